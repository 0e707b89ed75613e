package recipes

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
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

// ShellQuote quotes s as one /bin/sh word.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var tplCache sync.Map // string → *template.Template

// Templates come from recipes fetched from peers and are executed by lint
// (Parse, DecodeCanonical) and by the partitions: their execution is
// bounded. Template definitions and calls ({{define}}, {{template}},
// {{block}}: recursion) are refused; every range is charged its number of
// iterations (range over an integer included), and what the functions and
// the template produce is charged its length, against a budget per Render.
const (
	renderMaxIterations = 1 << 16
	renderMaxBytes      = 4 * MaxRecipeBytes
)

// rangeGuard is the function appended to every range's pipeline.
const rangeGuard = "weft_range_guard"

func compile(tpl string) (*template.Template, error) {
	if t, ok := tplCache.Load(tpl); ok {
		return t.(*template.Template), nil
	}
	b := &renderBudget{}
	t, err := template.New("").Funcs(b.funcs()).Option("missingkey=error").Parse(tpl)
	if err == nil {
		err = bound(t)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTemplate, cleanTemplateErr(err))
	}
	tplCache.Store(tpl, t)
	return t, nil
}

// bound refuses template definitions and calls and guards every range.
func bound(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return fmt.Errorf("{{define}} and {{block}} are not allowed in a recipe")
	}
	if t.Tree == nil || t.Root == nil {
		return nil
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return nil
			}
			for _, c := range x.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.TemplateNode:
			return fmt.Errorf("{{template}} is not allowed in a recipe")
		case *parse.IfNode:
			return walkBranch(&x.BranchNode, walk)
		case *parse.WithNode:
			return walkBranch(&x.BranchNode, walk)
		case *parse.RangeNode:
			x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pipe.Pos,
				Args: []parse.Node{parse.NewIdentifier(rangeGuard).SetTree(t.Tree).SetPos(x.Pipe.Pos)}})
			return walkBranch(&x.BranchNode, walk)
		}
		return nil
	}
	return walk(t.Root)
}

func walkBranch(b *parse.BranchNode, walk func(parse.Node) error) error {
	if err := walk(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return walk(b.ElseList)
	}
	return nil
}

// renderBudget is what one Render may still spend.
type renderBudget struct {
	iterations int
	bytes      int
}

func (b *renderBudget) charge(n int) error {
	b.bytes -= n
	if b.bytes < 0 {
		return fmt.Errorf("the output is over %d bytes", renderMaxBytes)
	}
	return nil
}

// Write charges the template's output.
func (b *renderBudget) Write(p []byte) (int, error) {
	if err := b.charge(len(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// funcs returns the functions templates may call besides text/template's
// other built-ins — shquote (quote for /bin/sh), json (JSON-encode), join —
// and the string-building built-ins, all charging their results to b, and
// the range guard.
func (b *renderBudget) funcs() template.FuncMap {
	str := func(f func(...any) string) func(...any) (string, error) {
		return func(args ...any) (string, error) {
			if b.bytes < 0 {
				return "", fmt.Errorf("the output is over %d bytes", renderMaxBytes)
			}
			s := f(args...)
			return s, b.charge(len(s))
		}
	}
	fm := template.FuncMap{
		"print":   str(fmt.Sprint),
		"println": str(fmt.Sprintln),
		"printf": func(format string, args ...any) (string, error) {
			return str(func(a ...any) string { return fmt.Sprintf(format, a...) })(args...)
		},
		"html":     str(template.HTMLEscaper),
		"js":       str(template.JSEscaper),
		"urlquery": str(template.URLQueryEscaper),
		"shquote":  func(s string) (string, error) { r := ShellQuote(s); return r, b.charge(len(r)) },
		"json": func(v any) (string, error) {
			out, err := json.Marshal(v)
			if err != nil {
				return "", err
			}
			return string(out), b.charge(len(out))
		},
		"join": func(elems []string, sep string) (string, error) {
			r := strings.Join(elems, sep)
			return r, b.charge(len(r))
		},
		rangeGuard: func(v reflect.Value) (reflect.Value, error) {
			n := 0
			switch v.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				n = int(min(max(v.Int(), 0), renderMaxIterations+1))
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				n = int(min(v.Uint(), renderMaxIterations+1))
			case reflect.Array, reflect.Slice, reflect.Map, reflect.String:
				n = v.Len()
			}
			b.iterations += n
			if b.iterations > renderMaxIterations {
				return v, fmt.Errorf("range: more than %d iterations", renderMaxIterations)
			}
			return v, nil
		},
	}
	return fm
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
	// A fresh budget for this execution (the parsed template is shared).
	budget := &renderBudget{bytes: renderMaxBytes}
	t, err = t.Clone()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	t.Funcs(budget.funcs())
	var b strings.Builder
	if err := t.Execute(io.MultiWriter(budget, &b), ctx); err != nil {
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
