package recipes

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const boundsBase = `
name = "r"
version = "1"
[params.n]
type = "number"
min = 0
max = 10
[types.default]
[[types.default.processes]]
name = "p"
command = "/bin/true"
[[types.default.promises]]
name = "up"
kind = "tcp"
target = "127.0.0.1:1"
`

// A recipe fetched by CID is checked by DecodeCanonical: values the TOML
// decoder rejects (negative sizes and durations, modes above 0777) must be
// rejected there too, or a peer's recipe lifts the memory limit (the
// partition skips memory.max <= 0) or gets a non-positive promise period.
func TestDecodeCanonicalRejectsNegativeValues(t *testing.T) {
	for name, mut := range map[string]func(r *Recipe){
		"memory":         func(r *Recipe) { r.Resources.MemoryBytes = -1 },
		"type disk":      func(r *Recipe) { r.Types["default"].Resources.DiskBytes = -1 },
		"promise period": func(r *Recipe) { p := &r.Types["default"].Promises[0]; p.Period, p.Timeout = -1, -1 },
		"batch timeout": func(r *Recipe) {
			r.Types["default"].Batch, r.Types["default"].Timeout = true, -1
			r.Types["default"].Processes[0].Restart = RestartNever
		},
		"install":   func(r *Recipe) { r.Install.Commands, r.Install.Timeout = []string{"true"}, -1 },
		"file mode": func(r *Recipe) { r.Files = []File{{Path: "f", Content: "x", Mode: 0o4755}} },
	} {
		r, err := Parse("r.toml", []byte(boundsBase))
		if err != nil {
			t.Fatal(err)
		}
		mut(r)
		if _, err := DecodeCanonical(r.Canonical()); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: DecodeCanonical accepted a value Parse cannot produce (err %v)", name, err)
		}
	}
}

// A number parameter is a number: NaN is within no bounds, and trailing
// garbage is not silently dropped.
func TestNumberParamRejectsNaNAndGarbage(t *testing.T) {
	r, err := Parse("r.toml", []byte(boundsBase))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"NaN", "nan", "5abc", "3 4", "1e999"} {
		if v, err := r.ValidateParams("", map[string]string{"n": s}); err == nil {
			t.Errorf("n=%q accepted as %v (min 0, max 10)", s, v["n"])
		}
	}
	if _, err := r.ValidateValues("", map[string]any{"n": math.NaN()}); err == nil {
		t.Error("NaN value accepted")
	}
	if v, err := r.ValidateParams("", map[string]string{"n": " 2.5 "}); err != nil || v["n"] != 2.5 {
		t.Errorf("2.5: %v %v", v, err)
	}
	_, err = Parse("r.toml", []byte(strings.Replace(boundsBase, "max = 10", "max = 10\ndefault = nan", 1)))
	if err == nil {
		t.Error("lint accepted default = nan for a parameter with min 0 and max 10")
	}
}

// Lint rejects files that cannot all be written: a file below another
// file, or a file where the partition keeps its own directories.
func TestLintFileConflicts(t *testing.T) {
	for name, files := range map[string]string{
		"file and dir":  "[[files]]\npath = \"a\"\ncontent = \"x\"\n[[files]]\npath = \"a/b\"\ncontent = \"y\"\n",
		"dir and file":  "[[types.default.files]]\npath = \"a/b/c\"\ncontent = \"y\"\n[[types.default.files]]\npath = \"a/b\"\ncontent = \"x\"\n",
		"log":           "[[types.default.files]]\npath = \"log\"\ncontent = \"x\"\n",
		"tmp":           "[[types.default.files]]\npath = \"./tmp\"\ncontent = \"x\"\n",
		"batch out dir": "[[types.job.files]]\npath = \"out/seed\"\ncontent = \"x\"\n",
	} {
		src := boundsBase + "[types.job]\nbatch = true\n[[types.job.processes]]\nname = \"p\"\ncommand = \"/bin/true\"\n" + files
		if _, err := Parse("r.toml", []byte(src)); err == nil {
			t.Errorf("%s: lint accepted files that fail (or vanish) at run time", name)
		}
	}
	ok := boundsBase + "[[types.default.files]]\npath = \"log2/a\"\ncontent = \"x\"\n[[types.default.files]]\npath = \"tmp/x\"\ncontent = \"x\"\n[[types.default.files]]\npath = \"out/x\"\ncontent = \"x\"\n"
	if _, err := Parse("r.toml", []byte(ok)); err != nil {
		t.Errorf("valid files rejected: %v", err)
	}
}

// Templates of a recipe fetched from a peer are executed by lint (and by
// the partitions): they must not run (or grow) without bound. Before the
// budget, each of these never returned or exhausted memory.
func TestTemplateExecutionIsBounded(t *testing.T) {
	ctx := TemplateContext{Params: map[string]any{"n": int64(1) << 40}, Ports: map[string]int{"a": 1, "b": 2}}
	for name, tpl := range map[string]string{
		"range int":      `{{range 1000000000000000}}{{end}}`,
		"range param":    `{{range .Params.n}}{{end}}`,
		"nested ranges":  `{{range 100000}}{{range 100000}}{{end}}{{end}}`,
		"recursion":      `{{define "a"}}{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}`,
		"block":          `{{block "b" .}}x{{end}}`,
		"growing printf": `{{$a := printf "%1000000d" 0}}{{$b := printf "%s%s%s%s%s%s%s%s" $a $a $a $a $a $a $a $a}}{{$c := printf "%s%s%s%s%s%s%s%s" $b $b $b $b $b $b $b $b}}{{$d := printf "%s%s%s%s%s%s%s%s" $c $c $c $c $c $c $c $c}}{{len $d}}`,
		"growing output": `{{range 60000}}{{printf "%1000000d" 0}}{{end}}`,
	} {
		if _, err := Render(tpl, ctx); !errors.Is(err, ErrTemplate) {
			t.Errorf("%s: rendered (err %v)", name, err)
		}
	}
	for tpl, want := range map[string]string{
		`{{range 3}}x{{end}}`:                                      "xxx",
		`{{range $k, $v := .Ports}}{{$k}}={{$v}} {{end}}`:          "a=1 b=2 ",
		`{{printf "%s-%d" "p" 7}} {{shquote "it's"}} {{html "<"}}`: `p-7 'it'\''s' &lt;`,
		`{{json .Ports}} {{print 1 2}}`:                            `{"a":1,"b":2} 1 2`,
	} {
		if got, err := Render(tpl, ctx); err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", tpl, got, err, want)
		}
	}
	// Through Parse (lint) and DecodeCanonical: a peer's recipe.
	src := strings.Replace(boundsBase, `command = "/bin/true"`, `command = "/bin/true{{range 1000000000000000}}{{end}}"`, 1)
	if _, err := Parse("r.toml", []byte(src)); err == nil {
		t.Error("lint accepted an unbounded template")
	}
}
