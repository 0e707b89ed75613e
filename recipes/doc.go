// Package recipes is weft's recipe format: a TOML file that says what software
// an instance needs and how to run it (SlapOS's software release), its
// validation, its canonical encoding and its content identifier (CID).
//
// Usage:
//
//	r, err := recipes.Parse("webserver.toml", data) // all problems, with lines
//	c := r.CID()                                     // same on every machine
//	params, err := r.ValidateParams("", map[string]string{"message": "hi"})
//	t, _ := r.Type("")                               // default software type
//	run, err := t.Render(recipes.TemplateContext{Params: params, ...})
//
// Subpackages: recipes/store keeps content (recipes, artifacts, batch results)
// on disk by CID; recipes/transfer moves it between peers over libp2p.
//
// Concurrency: a *Recipe is immutable after Parse and safe to share; Render
// and the other functions are safe for concurrent use.
package recipes
