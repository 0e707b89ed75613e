package recipes

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"text/template"
)

// TemplateContext is what templates in a recipe see, e.g.
// {{.Params.message}}, {{.Ports.http}}, {{.Partition.Dir}}, {{.Weft}}.
type TemplateContext struct {
	// Params are the validated request parameters with defaults filled
	// (values are string, int64, float64 or bool).
	Params map[string]any
	// Partition describes the slot the instance runs in.
	Partition PartitionInfo
	// Ports maps each port name the software type declares to its allocated port.
	Ports map[string]int
	// Host is the address other machines reach the instance's ports on
	// (the node's advertised IP); "127.0.0.1" when unknown.
	Host string
	// Weft is the absolute path of the running weft binary (for 'weft tool ...').
	Weft string
	// Node identifies the node that runs the instance.
	Node NodeInfo
	// Instance is the instance ID ("" during install).
	Instance string
	// Type is the software type being run.
	Type string
}

// PartitionInfo is the partition part of a TemplateContext.
type PartitionInfo struct {
	// ID is the partition index on its node.
	ID int
	// Dir is the partition's home directory (processes' default working dir).
	Dir string
	// Tmp is the partition's temporary directory.
	Tmp string
	// Out is the batch output directory; its tree becomes the job's result.
	Out string
	// Software is the recipe's install directory (shared, read-only to instances).
	Software string
}

// NodeInfo is the node part of a TemplateContext.
type NodeInfo struct {
	// PeerID is the node's libp2p peer ID.
	PeerID string
}

// templateFuncs are the functions templates may call besides text/template's
// built-ins: shquote (quote for /bin/sh), json (JSON-encode), join.
var templateFuncs = template.FuncMap{
	"shquote": ShellQuote,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join": strings.Join,
}

// ShellQuote quotes s as one /bin/sh word.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var tplCache sync.Map // string → *template.Template

func compile(tpl string) (*template.Template, error) {
	if t, ok := tplCache.Load(tpl); ok {
		return t.(*template.Template), nil
	}
	t, err := template.New("").Funcs(templateFuncs).Option("missingkey=error").Parse(tpl)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTemplate, cleanTemplateErr(err))
	}
	tplCache.Store(tpl, t)
	return t, nil
}

// Render fills in one template string. Strings without "{{" are returned
// as they are. A reference to an unknown parameter or port is an error.
func Render(tpl string, ctx TemplateContext) (string, error) {
	if !strings.Contains(tpl, "{{") {
		return tpl, nil
	}
	t, err := compile(tpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, ctx); err != nil {
		return "", fmt.Errorf("%w: %s", ErrTemplate, cleanTemplateErr(err))
	}
	return b.String(), nil
}

// cleanTemplateErr turns text/template's messages into something a recipe
// author understands.
func cleanTemplateErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "template: ")
	s = strings.TrimPrefix(s, ":")
	// ":1:9: executing \"\" at <.Params.x>: map has no entry for key \"x\""
	if i := strings.Index(s, "executing \"\" at "); i >= 0 {
		s = s[i+len("executing \"\" at "):]
	}
	s = strings.Replace(s, "map has no entry for key", "no such name", 1)
	return s
}

// Rendered is a software type filled in for one instance.
type Rendered struct {
	// Processes with command, args, env and dir rendered.
	Processes []Process
	// Promises with target, command and expected body rendered.
	Promises []Promise
	// Connection parameters rendered.
	Connection map[string]string
	// Files with template files rendered.
	Files []File
}

// Render fills every template of the software type with ctx.
func (t *SoftwareType) Render(ctx TemplateContext) (*Rendered, error) {
	var firstErr error
	r := func(what, s string) string {
		out, err := Render(s, ctx)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", what, err)
		}
		return out
	}
	out := &Rendered{Connection: map[string]string{}}
	for _, p := range t.Processes {
		q := p
		q.Command = r("process "+p.Name+" command", p.Command)
		q.Args = make([]string, len(p.Args))
		for i, a := range p.Args {
			q.Args[i] = r("process "+p.Name+" args", a)
		}
		q.Env = make(map[string]string, len(p.Env))
		for k, v := range p.Env {
			q.Env[k] = r("process "+p.Name+" env "+k, v)
		}
		q.Dir = r("process "+p.Name+" dir", p.Dir)
		out.Processes = append(out.Processes, q)
	}
	for _, p := range t.Promises {
		q := p
		q.Target = r("promise "+p.Name+" target", p.Target)
		q.Command = r("promise "+p.Name+" command", p.Command)
		q.ExpectBody = r("promise "+p.Name+" expect_body", p.ExpectBody)
		out.Promises = append(out.Promises, q)
	}
	for k, v := range t.Connection {
		out.Connection[k] = r("connection "+k, v)
	}
	for _, f := range t.Files {
		g := f
		if f.Template {
			g.Content = r("file "+f.Path, f.Content)
		}
		out.Files = append(out.Files, g)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// RenderInstall fills the install commands and env with ctx (only Weft,
// Node and Partition.Software are meaningful there).
func (in Install) RenderInstall(ctx TemplateContext) (commands []string, env map[string]string, err error) {
	for _, c := range in.Commands {
		s, err := Render(c, ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("install: %w", err)
		}
		commands = append(commands, s)
	}
	env = map[string]string{}
	for k, v := range in.Env {
		s, err := Render(v, ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("install env %s: %w", k, err)
		}
		env[k] = s
	}
	return commands, env, nil
}
