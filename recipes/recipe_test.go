package recipes

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_cids.json from the example recipes")

func exampleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example recipes: %v", err)
	}
	return files
}

func mustParseFile(t testing.TB, file string) *Recipe {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(file, b)
	if err != nil {
		t.Fatalf("parse %s:\n%v", file, err)
	}
	return r
}

func TestExamplesParse(t *testing.T) {
	for _, f := range exampleFiles(t) {
		r := mustParseFile(t, f)
		if _, err := r.Type(""); err != nil {
			t.Errorf("%s: default type: %v", f, err)
		}
		for _, tn := range r.TypeNames() {
			schema, _ := r.Schema(tn)
			given := map[string]string{}
			for k, p := range schema {
				if p.Required {
					given[k] = "x"
				}
			}
			if _, err := r.ValidateParams(tn, given); err != nil {
				t.Errorf("%s: type %s: defaults do not validate: %v", f, tn, err)
			}
		}
	}
}

// TestGoldenCIDs checks that the example recipes' CIDs are the ones recorded
// in testdata (regenerate with go test ./recipes -run TestGoldenCIDs -update
// after a deliberate change to the format).
func TestGoldenCIDs(t *testing.T) {
	golden := filepath.Join("testdata", "golden_cids.json")
	got := map[string]string{}
	for _, f := range exampleFiles(t) {
		got[filepath.Base(f)] = mustParseFile(t, f).CID().String()
	}
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want map[string]string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for name, c := range got {
		if want[name] != c {
			t.Errorf("%s: CID %s, golden %s (format changed? rerun with -update)", name, c, want[name])
		}
	}
}

const webA = `
name = "web"
version = "1"
[params.message]
type = "string"
default = "hi"
[types.default]
ports = ["http"]
[[types.default.processes]]
name = "httpd"
command = "{{.Weft}}"
args = ["tool", "httpd", "--addr", "127.0.0.1:{{.Ports.http}}"]
[[types.default.promises]]
name = "up"
kind = "tcp"
target = "127.0.0.1:{{.Ports.http}}"
[types.default.connection]
url = "http://127.0.0.1:{{.Ports.http}}/"
`

// webB means the same as webA, written differently: key order, comments,
// inline tables, dotted keys, literal strings and explicit defaults.
const webB = `# the same recipe
version = '1'   # comment
types.default.connection = { url = "http://127.0.0.1:{{.Ports.http}}/" }

[types.default]
promises = [ { target = "127.0.0.1:{{.Ports.http}}", kind = "tcp", name = "up", period = "10s", when = "both" } ]
processes = [
  { name = "httpd", command = '{{.Weft}}', restart = "always", dir = "{{.Partition.Dir}}",
    args = ["tool", "httpd", "--addr", "127.0.0.1:{{.Ports.http}}"] },
]
ports = [ "http" ]
resources = { cpu_millis = 100, memory = "64MiB", disk = 268435456 }

[params]
message = { default = "hi" }

[resources]
memory = 67108864
` + "\nname = \"web\"\n"

func TestCIDInvariantUnderFormatting(t *testing.T) {
	a, err := Parse("a.toml", []byte(webA))
	if err != nil {
		t.Fatal(err)
	}
	// "name" after [resources] would belong to that table; put it first.
	b, err := Parse("b.toml", []byte("name = \"web\"\n"+strings.Replace(webB, "\nname = \"web\"\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if a.CID() != b.CID() {
		t.Fatalf("same recipe, different CIDs: %s vs %s\nA=%x\nB=%x", a.CID(), b.CID(), a.Canonical(), b.Canonical())
	}
	c, err := Parse("c.toml", []byte(strings.Replace(webA, `default = "hi"`, `default = "ho"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.CID() == a.CID() {
		t.Fatal("a changed default kept the CID")
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	for _, f := range exampleFiles(t) {
		r := mustParseFile(t, f)
		back, err := DecodeCanonical(r.Canonical())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if back.CID() != r.CID() {
			t.Fatalf("%s: CID changed through canonical decoding", f)
		}
	}
	if _, err := DecodeCanonical([]byte{0xa1, 0x61, 0x78, 0x01}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("garbage decoded: %v", err)
	}
}

func TestLintReportsEveryErrorWithItsLine(t *testing.T) {
	src := `name = "Bad Name"
version = "1"
colour = "blue"

[params.n]
type = "integer"

[params.m]
type = "int"
default = "ten"

[types.default]
ports = ["http", "http"]

[[types.default.processes]]
name = "a"
comand = "/bin/true"

[[types.default.processes]]
name = "b"
command = "/bin/echo"
args = ["{{.Params.nope}}", "{{.Ports.web}}"]
restart = "sometimes"

[[types.default.promises]]
name = "p"
kind = "http"
`
	_, err := Parse("bad.toml", []byte(src))
	var le *LintErrors
	if !errors.As(err, &le) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("want *LintErrors, got %v", err)
	}
	for _, w := range []struct {
		line int
		has  string
	}{
		{1, "name"},
		{3, `unknown key "colour"`},
		{6, `"integer" is not a parameter type`},
		{10, `"ten" is not an integer`},
		{13, `port "http" is declared twice`},
		{17, `unknown key "comand" (did you mean "command"?)`},
		{22, "nope"},
		{22, "web"},
		{23, `"sometimes" is not a restart policy`},
		{25, "needs a target"},
	} {
		if !hasProblem(le, w.line, w.has) {
			t.Errorf("missing bad.toml:%d: ...%s...\ngot:\n%v", w.line, w.has, err)
		}
	}
	// A wrongly typed value is reported once, not again as "missing".
	for _, p := range le.Problems {
		if strings.HasPrefix(p.Path, "params.m.default") && !strings.Contains(p.Msg, "is not an integer") {
			t.Errorf("follow-up problem for a wrongly typed value: %s", p.Msg)
		}
	}
	for _, l := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(l, "bad.toml:") {
			t.Errorf("line %q is not FILE:LINE: message", l)
		}
	}
}

func hasProblem(le *LintErrors, line int, sub string) bool {
	return slices.ContainsFunc(le.Problems, func(p Problem) bool { return p.Line == line && strings.Contains(p.Msg, sub) })
}

func TestLintSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("s.toml", []byte("name = \"x\"\nversion = \"1\"\n[types.default\n"))
	var le *LintErrors
	if !errors.As(err, &le) || le.Problems[0].Line != 3 {
		t.Fatalf("want a problem on line 3, got %v", err)
	}
}

func TestLintSemanticChecks(t *testing.T) {
	cases := []struct {
		name, src, want string
		line            int
	}{
		{"no types", "name = \"x\"\nversion = \"1\"\n", "declare at least one software type", 1},
		{"batch restart always", "name=\"x\"\nversion=\"1\"\n[types.job]\nbatch=true\n[[types.job.processes]]\nname=\"a\"\ncommand=\"true\"\nrestart=\"always\"\n", "batch process cannot restart always", 8},
		{"default type unknown", "name=\"x\"\nversion=\"1\"\ndefault_type=\"zz\"\n[types.a]\nprocesses=[{name=\"a\",command=\"true\"}]\n", `"zz" is not a software type`, 3},
		{"two types no default", "name=\"x\"\nversion=\"1\"\n[types.a]\nprocesses=[{name=\"a\",command=\"true\"}]\n[types.b]\nprocesses=[{name=\"a\",command=\"true\"}]\n", "say which one", 1},
		{"install uses params", "name=\"x\"\nversion=\"1\"\n[install]\ncommands=[\"echo {{.Params.x}}\"]\n[types.a]\nprocesses=[{name=\"a\",command=\"true\"}]\n", "install runs once per node", 4},
		{"file escapes", "name=\"x\"\nversion=\"1\"\n[[files]]\npath=\"../etc/passwd\"\ncontent=\"x\"\n[types.a]\nprocesses=[{name=\"a\",command=\"true\"}]\n", "relative path inside", 4},
		{"default out of range", "name=\"x\"\nversion=\"1\"\n[params.n]\ntype=\"int\"\ndefault=1\nmin=5\n[types.a]\nprocesses=[{name=\"a\",command=\"true\"}]\n", "below the minimum", 5},
		{"bad duration", "name=\"x\"\nversion=\"1\"\n[types.a]\nprocesses=[{name=\"a\",command=\"true\"}]\npromises=[{name=\"p\",kind=\"command\",command=\"true\",period=\"soon\"}]\n", "not a duration", 5},
		{"template syntax", "name=\"x\"\nversion=\"1\"\n[types.a]\n[[types.a.processes]]\nname=\"a\"\ncommand=\"{{.Weft\"\n", "unclosed action", 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(c.src))
			var le *LintErrors
			if !errors.As(err, &le) {
				t.Fatalf("want *LintErrors, got %v", err)
			}
			if !hasProblem(le, c.line, c.want) {
				t.Fatalf("want line %d with %q, got:\n%v", c.line, c.want, err)
			}
		})
	}
}

func TestValidateParams(t *testing.T) {
	src := `name="x"
version="1"
[params.n]
type="int"
default=10
min=1
max=100
[params.mode]
enum=["fast","slow"]
default="fast"
[params.ratio]
type="number"
[params.token]
required=true
pattern="[a-z]+"
[types.a]
[types.a.params.extra]
type="bool"
[[types.a.processes]]
name="a"
command="true"
`
	r, err := Parse("p.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ValidateParams("", map[string]string{"token": "abc", "n": "42", "extra": "yes"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"token": "abc", "n": int64(42), "mode": "fast", "ratio": float64(0), "extra": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	_, err = r.ValidateParams("", map[string]string{"n": "1000", "mode": "medium", "tokn": "x", "ratio": "abc"})
	var pe *ParamsError
	if !errors.As(err, &pe) || !errors.Is(err, ErrParams) {
		t.Fatalf("want *ParamsError, got %v", err)
	}
	for _, sub := range []string{"n: 1000 is above the maximum 100", `mode: "medium" is not one of`, "tokn: unknown parameter", "token: missing required", `ratio: "abc" is not a number`} {
		if !strings.Contains(err.Error(), sub) {
			t.Errorf("missing %q in %v", sub, err)
		}
	}
	if _, err := r.ValidateValues("", map[string]any{"token": "ABC"}); err == nil || !strings.Contains(err.Error(), "pattern") {
		t.Errorf("pattern not enforced: %v", err)
	}
	if _, err := r.ValidateValues("", map[string]any{"token": "a", "n": 5.0}); err != nil {
		t.Errorf("JSON integer as float64 refused: %v", err)
	}
	if _, err := r.ValidateParams("nope", nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestRenderSoftwareType(t *testing.T) {
	r := mustParseFile(t, "examples/webserver.toml")
	params, err := r.ValidateParams("", map[string]string{"message": "it's <b>"})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := r.Type("")
	ctx := TemplateContext{Params: params, Ports: map[string]int{"http": 4242}, Host: "127.0.0.1", Weft: "/bin/weft",
		Partition: PartitionInfo{ID: 3, Dir: "/p3"}}
	out, err := st.Render(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out.Connection["url"] != "http://127.0.0.1:4242/" {
		t.Errorf("url = %q", out.Connection["url"])
	}
	if p := out.Processes[0]; p.Command != "/bin/weft" || p.Dir != "/p3" || !slices.Contains(p.Args, "it's <b>") {
		t.Errorf("process = %+v", p)
	}
	if _, err := Render("{{.Ports.nope}}", ctx); !errors.Is(err, ErrTemplate) {
		t.Errorf("unknown port rendered: %v", err)
	}
	if s, _ := Render("{{shquote .Params.message}}", ctx); s != `'it'\''s <b>'` {
		t.Errorf("shquote = %s", s)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "64MiB": 64 << 20, "1GB": 1e9, "2 GiB": 2 << 30, "512k": 512 << 10} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1XB", "99999999999999TiB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func TestKeyLines(t *testing.T) {
	src := "a = 1\n[t]\nb = \"\"\"x\ny\"\"\"\nc = [\n  { d = 1 },\n  { d = 2, e = 'q' },\n]\n[[arr]]\nf = 1\n[[arr]]\nf = 2\n[arr.sub]\ng = 1\n[x.y.z]\nh.i = 1\n"
	l := keyLines(src)
	want := map[string]int{"a": 1, "t": 2, "t.b": 3, "t.c": 5, "t.c.0.d": 6, "t.c.1.e": 7, "arr.0.f": 10, "arr.1.f": 12, "arr.1.sub.g": 14,
		// parents written only as part of a header or a dotted key
		"arr.1.sub": 13, "x": 15, "x.y": 15, "x.y.z.h": 16, "x.y.z.h.i": 16}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s: line %d, want %d (all: %v)", k, l[k], v, l)
		}
	}
}

// An unknown table written only as part of a header is reported on that
// header's line, not on line 1.
func TestUnknownTableLine(t *testing.T) {
	src := "name = \"x\"\nversion = \"1\"\n\n[software_types.default]\ncommand = \"true\"\n"
	_, err := Parse("t.toml", []byte(src))
	var le *LintErrors
	if !errors.As(err, &le) {
		t.Fatalf("want *LintErrors, got %v", err)
	}
	if !hasProblem(le, 4, `unknown key "software_types"`) {
		t.Errorf("unknown table not reported on line 4:\n%v", err)
	}
}
