package recipes

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Defaults applied by Parse.
const (
	DefaultCPUMillis      = 100
	DefaultMemoryBytes    = 64 << 20
	DefaultDiskBytes      = 256 << 20
	DefaultPromisePeriod  = 10 * time.Second
	DefaultPromiseTimeout = 5 * time.Second
	DefaultInstallTimeout = 10 * time.Minute
	DefaultFileMode       = 0o644
	DefaultProcessDir     = "{{.Partition.Dir}}"
)

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	procRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	envRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Parse reads a recipe file. name is used in error messages (usually the
// file's path). Every problem found is reported: the error is a *LintErrors
// (wrapping ErrInvalid) listing each with its line.
func Parse(name string, data []byte) (*Recipe, error) {
	if len(data) > MaxRecipeBytes {
		return nil, &LintErrors{File: name, Problems: []Problem{{Line: 1,
			Msg: fmt.Sprintf("the file is %d bytes; a recipe may be at most %d (put large files in artifacts)", len(data), MaxRecipeBytes)}}}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		line, msg := 1, err.Error()
		if errors.As(err, &pe) {
			line, msg = pe.Position.Line, "TOML syntax: "+pe.Message
			if st := pe.Position.Start; st > 0 && st <= len(data) {
				// Position.Line counts a newline the lexer already consumed.
				line = 1 + bytes.Count(data[:st], []byte("\n"))
			}
			if line < 1 {
				line = 1
			}
		}
		return nil, &LintErrors{File: name, Problems: []Problem{{Line: line, Msg: msg}}}
	}
	lines := keyLines(string(data))
	var p problems
	r := &Recipe{}
	decodeInto(doc, reflect.ValueOf(r).Elem(), "", &p)
	n := len(p.list)
	r.normalize(&p)
	p.dropUnder(n)
	if err := p.errorFor(name, lines); err != nil {
		return nil, err
	}
	return r, nil
}

// normalize fills defaults and checks everything, adding problems to p.
// It is idempotent: normalizing a normalized recipe changes nothing.
func (r *Recipe) normalize(p *problems) {
	if r.Name == "" {
		p.add("name", "missing: every recipe needs a name, e.g. name = \"webserver\"")
	} else if !nameRe.MatchString(r.Name) {
		p.add("name", "%q: use lower-case letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)", r.Name)
	}
	if r.Version == "" {
		p.add("version", "missing: every recipe needs a version, e.g. version = \"1.0.0\"")
	} else if len(r.Version) > 64 {
		p.add("version", "too long (at most 64 characters)")
	}
	normalizeParams(r.Params, "params", p)
	r.Resources.normalize(Resources{CPUMillis: DefaultCPUMillis, MemoryBytes: DefaultMemoryBytes, DiskBytes: DefaultDiskBytes}, "resources", p)
	r.Install.normalize(p)
	normalizeFiles(r.Files, "files", false, p)

	if len(r.Types) == 0 {
		p.add("types", "missing: declare at least one software type, e.g. [types.default] with its [[types.default.processes]]")
	}
	for _, tn := range sortedKeys(r.Types) {
		t := r.Types[tn]
		tp := "types." + tn
		if !procRe.MatchString(tn) {
			p.add(tp, "software type name %q: use letters, digits, '.', '_' and '-'", tn)
		}
		if t == nil {
			t = &SoftwareType{}
			r.Types[tn] = t
		}
		t.normalize(r, tn, tp, p)
	}
	if r.DefaultType == "" {
		if _, ok := r.Types["default"]; ok {
			r.DefaultType = "default"
		} else if len(r.Types) == 1 {
			r.DefaultType = sortedKeys(r.Types)[0]
		} else if len(r.Types) > 1 {
			p.add("default_type", "missing: with several software types (%s) and none called \"default\", say which one requests get", strings.Join(sortedKeys(r.Types), ", "))
		}
	} else if _, ok := r.Types[r.DefaultType]; !ok && len(r.Types) > 0 {
		p.add("default_type", "%q is not a software type of this recipe (it has: %s)", r.DefaultType, strings.Join(sortedKeys(r.Types), ", "))
	}
	r.checkTemplates(p)
}

func (res *Resources) normalize(def Resources, at string, p *problems) {
	// The TOML decoder rejects negative sizes; a canonical encoding
	// (a recipe fetched by CID) is checked here.
	if res.CPUMillis < 0 {
		p.add(at+".cpu_millis", "cannot be negative")
	}
	if res.MemoryBytes < 0 {
		p.add(at+".memory", "cannot be negative")
	}
	if res.DiskBytes < 0 {
		p.add(at+".disk", "cannot be negative")
	}
	if res.CPUMillis == 0 {
		res.CPUMillis = def.CPUMillis
	}
	if res.MemoryBytes == 0 {
		res.MemoryBytes = def.MemoryBytes
	}
	if res.DiskBytes == 0 {
		res.DiskBytes = def.DiskBytes
	}
}

func (in *Install) normalize(p *problems) {
	for i, c := range in.Commands {
		if strings.TrimSpace(c) == "" {
			p.add(fmt.Sprintf("install.commands.%d", i), "empty command")
		}
	}
	checkEnv(in.Env, "install.env", p)
	checkDuration(in.Timeout, "install.timeout", p)
	if in.Timeout == 0 && len(in.Commands) > 0 {
		in.Timeout = Duration(DefaultInstallTimeout)
	}
}

// checkDuration rejects a negative duration (which only a canonical
// encoding, not the TOML decoder, can hold).
func checkDuration(d Duration, at string, p *problems) {
	if d < 0 {
		p.add(at, "a duration cannot be negative")
	}
}

func checkEnv(env map[string]string, at string, p *problems) {
	for _, k := range sortedKeys(env) {
		if !envRe.MatchString(k) {
			p.add(at+"."+k, "%q is not a valid environment variable name", k)
		}
	}
}

func normalizeFiles(fs []File, at string, perInstance bool, p *problems) {
	seen := map[string]bool{}
	for i := range fs {
		f := &fs[i]
		fp := fmt.Sprintf("%s.%d", at, i)
		clean := path.Clean(f.Path)
		switch {
		case f.Path == "":
			p.add(fp+".path", "missing: where should the file go?")
		case path.IsAbs(f.Path) || clean == ".." || strings.HasPrefix(clean, "../") || clean == ".":
			p.add(fp+".path", "%q must be a relative path inside the directory", f.Path)
		default:
			f.Path = clean
			if seen[clean] {
				p.add(fp+".path", "%q is declared twice", clean)
			}
			seen[clean] = true
		}
		n := 0
		for _, s := range []string{f.Content, f.CID, f.Source} {
			if s != "" {
				n++
			}
		}
		if n > 1 {
			p.add(fp, "give only one of content, cid and source")
		}
		if f.CID != "" {
			if c, err := cid.Decode(f.CID); err != nil {
				p.add(fp+".cid", "%q is not a CID: %v", short(f.CID), err)
			} else if pr := c.Prefix(); pr.Version != 1 || pr.MhType != multihash.SHA2_256 || (pr.Codec != cid.Raw && pr.Codec != cid.DagCBOR) {
				p.add(fp+".cid", "%s is not a weft content ID (CIDv1, sha2-256, raw or dag-cbor: what 'weft recipe publish' or POST /v1/content gives)", short(f.CID))
			} else {
				f.CID = c.String() // one spelling (base32) for one CID
			}
		}
		if f.Template && (!perInstance || f.Content == "") {
			if !perInstance {
				p.add(fp+".template", "files of the recipe are shared by every instance and cannot be templates; declare it in a software type's files")
			} else {
				p.add(fp+".template", "only inline content can be a template")
			}
		}
		if f.Mode > 0o777 {
			p.add(fp+".mode", "mode %o is out of range (0 to 0777)", uint32(f.Mode))
		}
		if f.Mode == 0 {
			f.Mode = DefaultFileMode
		}
	}
	// A file cannot also be a directory of another: writing both fails.
	for i, f := range fs {
		for dir := path.Dir(f.Path); dir != "." && dir != "/" && f.Path != ""; dir = path.Dir(dir) {
			if seen[dir] {
				p.add(fmt.Sprintf("%s.%d.path", at, i), "%q is below %q, which is declared as a file", f.Path, dir)
				break
			}
		}
	}
}

func (t *SoftwareType) normalize(r *Recipe, name, at string, p *problems) {
	normalizeParams(t.Params, at+".params", p)
	t.Resources.normalize(r.Resources, at+".resources", p)
	seenPort := map[string]bool{}
	for i, pn := range t.Ports {
		if !identRe.MatchString(pn) {
			p.add(fmt.Sprintf("%s.ports.%d", at, i), "port name %q: use letters, digits and '_' (it is used as {{.Ports.%s}})", pn, pn)
		}
		if seenPort[pn] {
			p.add(fmt.Sprintf("%s.ports.%d", at, i), "port %q is declared twice", pn)
		}
		seenPort[pn] = true
	}
	if len(t.Processes) == 0 {
		p.add(at, "software type %q has no processes: add at least one [[%s.processes]]", name, at)
	}
	checkDuration(t.Timeout, at+".timeout", p)
	if !t.Batch && t.Timeout != 0 {
		p.add(at+".timeout", "only batch software types have a timeout")
	}
	seen := map[string]bool{}
	for i := range t.Processes {
		pr := &t.Processes[i]
		pp := fmt.Sprintf("%s.processes.%d", at, i)
		if pr.Name == "" {
			p.add(pp+".name", "missing: every process needs a name")
		} else if !procRe.MatchString(pr.Name) {
			p.add(pp+".name", "%q: use letters, digits, '.', '_' and '-'", pr.Name)
		} else if seen[pr.Name] {
			p.add(pp+".name", "process %q is declared twice", pr.Name)
		}
		seen[pr.Name] = true
		if strings.TrimSpace(pr.Command) == "" {
			p.add(pp+".command", "missing: what should the process run?")
		}
		checkEnv(pr.Env, pp+".env", p)
		if pr.Dir == "" {
			pr.Dir = DefaultProcessDir
		}
		switch pr.Restart {
		case "":
			pr.Restart = RestartAlways
			if t.Batch {
				pr.Restart = RestartNever
			}
		case RestartAlways:
			if t.Batch {
				p.add(pp+".restart", "a batch process cannot restart always: the job would never finish (use on-failure or never)")
			}
		case RestartOnFailure, RestartNever:
		default:
			p.add(pp+".restart", "%q is not a restart policy (always, on-failure or never)", pr.Restart)
		}
	}
	seen = map[string]bool{}
	for i := range t.Promises {
		pr := &t.Promises[i]
		pp := fmt.Sprintf("%s.promises.%d", at, i)
		if pr.Name == "" {
			p.add(pp+".name", "missing: every promise needs a name")
		} else if !procRe.MatchString(pr.Name) {
			p.add(pp+".name", "%q: use letters, digits, '.', '_' and '-'", pr.Name)
		} else if seen[pr.Name] {
			p.add(pp+".name", "promise %q is declared twice", pr.Name)
		}
		seen[pr.Name] = true
		switch pr.Kind {
		case PromiseTCP, PromiseHTTP:
			if pr.Target == "" {
				p.add(pp+".target", "missing: a %s promise needs a target (%s)", pr.Kind, map[PromiseKind]string{PromiseTCP: "host:port", PromiseHTTP: "a URL"}[pr.Kind])
			}
			if pr.Command != "" {
				p.add(pp+".command", "only command promises have a command")
			}
		case PromiseCommand:
			if pr.Command == "" {
				p.add(pp+".command", "missing: a command promise needs a command (a /bin/sh script; exit 0 means healthy)")
			}
			if pr.Target != "" {
				p.add(pp+".target", "command promises have no target")
			}
		case "":
			p.add(pp+".kind", "missing: tcp, http or command")
		default:
			p.add(pp+".kind", "%q is not a promise kind (tcp, http or command)", pr.Kind)
		}
		if pr.Kind == PromiseHTTP {
			if pr.ExpectStatus == 0 {
				pr.ExpectStatus = 200
			} else if pr.ExpectStatus < 100 || pr.ExpectStatus > 599 {
				p.add(pp+".expect_status", "%d is not an HTTP status", pr.ExpectStatus)
			}
		} else if pr.ExpectStatus != 0 || pr.ExpectBody != "" {
			p.add(pp, "expect_status and expect_body are for http promises")
		}
		checkDuration(pr.Period, pp+".period", p)
		checkDuration(pr.Timeout, pp+".timeout", p)
		if pr.Period == 0 {
			pr.Period = Duration(DefaultPromisePeriod)
		}
		if pr.Timeout == 0 {
			pr.Timeout = Duration(min(DefaultPromiseTimeout, pr.Period.D()))
		}
		if pr.Timeout > pr.Period {
			p.add(pp+".timeout", "%s is longer than the period %s", pr.Timeout, pr.Period)
		}
		switch pr.When {
		case "":
			pr.When = WhenBoth
		case WhenTest, WhenAnomaly, WhenBoth:
		default:
			p.add(pp+".when", "%q: use test (after start), anomaly (periodically) or both", pr.When)
		}
	}
	for _, k := range sortedKeys(t.Connection) {
		if !identRe.MatchString(k) {
			p.add(at+".connection."+k, "connection parameter name %q: use letters, digits and '_'", k)
		}
	}
	normalizeFiles(t.Files, at+".files", true, p)
	// The partition's own directories: log (process logs), tmp (TMPDIR)
	// and, for batch types, out (emptied before the run: files there would
	// be lost).
	for i, f := range t.Files {
		top, _, below := strings.Cut(f.Path, "/")
		if (top == "log" || top == "tmp") && !below || t.Batch && top == "out" {
			p.add(fmt.Sprintf("%s.files.%d.path", at, i), "%q is the partition's own directory %s", f.Path, top)
		}
	}
}

func normalizeParams(ps map[string]*Param, at string, p *problems) {
	for _, n := range sortedKeys(ps) {
		pa := ps[n]
		pp := at + "." + n
		if !identRe.MatchString(n) {
			p.add(pp, "parameter name %q: use letters, digits and '_' (it is used as {{.Params.%s}})", n, n)
		}
		if pa == nil {
			pa = &Param{}
			ps[n] = pa
		}
		switch pa.Type {
		case "":
			pa.Type = TypeString
		case TypeString, TypeInt, TypeNumber, TypeBool:
		default:
			p.add(pp+".type", "%q is not a parameter type (string, int, number or bool)", pa.Type)
			continue
		}
		if pa.Min != nil && pa.Max != nil && *pa.Min > *pa.Max {
			p.add(pp+".min", "min %g is greater than max %g", *pa.Min, *pa.Max)
		}
		if (pa.Min != nil || pa.Max != nil) && pa.Type == TypeBool {
			p.add(pp, "a bool parameter has no min or max")
		}
		if pa.Pattern != "" {
			if pa.Type != TypeString {
				p.add(pp+".pattern", "only string parameters have a pattern")
			} else if _, err := regexp.Compile(pa.Pattern); err != nil {
				p.add(pp+".pattern", "not a regular expression: %v", err)
			}
		}
		for i, e := range pa.Enum {
			v, err := pa.convert(e)
			if err != nil {
				p.add(fmt.Sprintf("%s.enum.%d", pp, i), "%v", err)
				continue
			}
			pa.Enum[i] = v
		}
		if pa.Default != nil {
			if pa.Required {
				p.add(pp+".required", "a required parameter cannot have a default")
			}
			v, err := pa.check(pa.Default)
			if err != nil {
				p.add(pp+".default", "%v", err)
			} else {
				pa.Default = v
			}
		}
	}
}

// convert turns a TOML/CBOR/JSON value into the parameter's Go type.
func (pa *Param) convert(v any) (any, error) {
	switch pa.Type {
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case uint64:
			if x <= 1<<63-1 {
				return int64(x), nil
			}
		case float64:
			if x == float64(int64(x)) {
				return int64(x), nil
			}
		}
	case TypeNumber:
		switch x := v.(type) {
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		case uint64:
			return float64(x), nil
		case float64:
			if !math.IsNaN(x) { // NaN is within no bounds and equal to no enum value
				return x, nil
			}
		case float32:
			if !math.IsNaN(float64(x)) {
				return float64(x), nil
			}
		}
	}
	return nil, fmt.Errorf("%s is not %s", describe(v), map[ParamType]string{TypeString: "a string", TypeInt: "an integer", TypeNumber: "a number", TypeBool: "true or false"}[pa.Type])
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", short(x))
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%v", v)
}

// check converts v and checks it against enum, min, max and pattern.
func (pa *Param) check(v any) (any, error) {
	v, err := pa.convert(v)
	if err != nil {
		return nil, err
	}
	if len(pa.Enum) > 0 {
		ok := false
		for _, e := range pa.Enum {
			if e == v {
				ok = true
				break
			}
		}
		if !ok {
			var vs []string
			for _, e := range pa.Enum {
				vs = append(vs, describe(e))
			}
			return nil, fmt.Errorf("%s is not one of %s", describe(v), strings.Join(vs, ", "))
		}
	}
	var n float64
	what := ""
	switch x := v.(type) {
	case int64:
		n, what = float64(x), fmt.Sprint(x)
	case float64:
		n, what = x, fmt.Sprint(x)
	case string:
		n, what = float64(len(x)), fmt.Sprintf("its length %d", len(x))
		if pa.Pattern != "" {
			re, err := regexp.Compile("^(?:" + pa.Pattern + ")$")
			if err == nil && !re.MatchString(x) {
				return nil, fmt.Errorf("%s does not match the pattern %s", describe(x), pa.Pattern)
			}
		}
	}
	if pa.Min != nil && n < *pa.Min {
		return nil, fmt.Errorf("%s is below the minimum %g", what, *pa.Min)
	}
	if pa.Max != nil && n > *pa.Max {
		return nil, fmt.Errorf("%s is above the maximum %g", what, *pa.Max)
	}
	return v, nil
}

// zero is the value of an optional parameter given no default.
func (pa *Param) zero() any {
	switch pa.Type {
	case TypeInt:
		return int64(0)
	case TypeNumber:
		return float64(0)
	case TypeBool:
		return false
	}
	return ""
}

// Schema returns the parameters of softwareType ("" = default type): the
// recipe's, with the type's added or overriding.
func (r *Recipe) Schema(softwareType string) (map[string]*Param, error) {
	t, err := r.Type(softwareType)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Param, len(r.Params)+len(t.Params))
	for k, v := range r.Params {
		out[k] = v
	}
	for k, v := range t.Params {
		out[k] = v
	}
	return out, nil
}

// ValidateParams checks string parameters (as given on a command line)
// against the schema of softwareType ("" = default type), converts them to
// their declared types and fills defaults. Every problem is reported in one
// error wrapping ErrParams.
func (r *Recipe) ValidateParams(softwareType string, params map[string]string) (map[string]any, error) {
	schema, err := r.Schema(softwareType)
	if err != nil {
		return nil, err
	}
	in := make(map[string]any, len(params))
	var errs []string
	for _, k := range sortedKeys(params) {
		s := params[k]
		pa, ok := schema[k]
		if !ok {
			in[k] = s // reported as unknown below
			continue
		}
		v, err := parseString(pa.Type, s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		in[k] = v
	}
	out, err := r.ValidateValues(softwareType, in)
	if err != nil {
		var pe *ParamsError
		if errors.As(err, &pe) {
			errs = append(errs, pe.Problems...)
		} else {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, &ParamsError{Problems: errs}
	}
	return out, nil
}

func parseString(t ParamType, s string) (any, error) {
	switch t {
	case TypeInt:
		var n int64
		if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != strings.TrimSpace(s) {
			return nil, fmt.Errorf("%q is not an integer", short(s))
		}
		return n, nil
	case TypeNumber:
		// The whole string, not its first word (fmt.Sscan stops there).
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a number", short(s))
		}
		return f, nil
	case TypeBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "1", "on":
			return true, nil
		case "false", "no", "0", "off":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", short(s))
	}
	return s, nil
}

// ParamsError lists every problem of a request's parameters. It wraps ErrParams.
type ParamsError struct {
	// Problems are "name: what is wrong" lines.
	Problems []string
}

// Error joins the problems.
func (e *ParamsError) Error() string {
	return "recipes: invalid parameters: " + strings.Join(e.Problems, "; ")
}

// Unwrap makes errors.Is(err, ErrParams) true.
func (e *ParamsError) Unwrap() error { return ErrParams }

// ValidateValues is ValidateParams for typed values (e.g. from JSON: numbers
// may be float64 or json.Number-free integers).
func (r *Recipe) ValidateValues(softwareType string, params map[string]any) (map[string]any, error) {
	schema, err := r.Schema(softwareType)
	if err != nil {
		return nil, err
	}
	var errs []string
	out := make(map[string]any, len(schema))
	for _, k := range sortedKeys(params) {
		pa, ok := schema[k]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: unknown parameter%s (this software type has: %s)", k, suggest(k, sortedKeys(schema)), strings.Join(sortedKeys(schema), ", ")))
			continue
		}
		v, err := pa.check(params[k])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		out[k] = v
	}
	for _, k := range sortedKeys(schema) {
		if _, given := params[k]; given {
			continue
		}
		pa := schema[k]
		switch {
		case pa.Required:
			errs = append(errs, fmt.Sprintf("%s: missing required parameter (%s)", k, orDefault(pa.Description, string(pa.Type))))
		case pa.Default != nil:
			out[k] = pa.Default
		default:
			out[k] = pa.zero()
		}
	}
	if len(errs) > 0 {
		return nil, &ParamsError{Problems: errs}
	}
	return out, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// sampleContext is a TemplateContext with plausible values, used to check
// every template of a software type when the recipe is parsed.
func (r *Recipe) sampleContext(t *SoftwareType, name string) TemplateContext {
	params := map[string]any{}
	for k, pa := range r.Params {
		params[k] = pa.zero()
	}
	for k, pa := range t.Params {
		params[k] = pa.zero()
	}
	ports := map[string]int{}
	for i, pn := range t.Ports {
		ports[pn] = 20000 + i
	}
	return TemplateContext{
		Params:    params,
		Ports:     ports,
		Host:      "127.0.0.1",
		Weft:      "/usr/local/bin/weft",
		Node:      NodeInfo{PeerID: "12D3KooWSample"},
		Instance:  "sample",
		Type:      name,
		Partition: PartitionInfo{ID: 0, Dir: "/srv/weft/p0", Tmp: "/srv/weft/p0/tmp", Out: "/srv/weft/p0/out", Software: "/srv/weft/software/sample"},
	}
}

// checkTemplates renders every template with a sample context, so a typo in
// a parameter or port name is found by lint, not at run time.
func (r *Recipe) checkTemplates(p *problems) {
	try := func(at, tpl string, ctx TemplateContext, hint string) {
		if _, err := Render(tpl, ctx); err != nil {
			p.add(at, "%s%s", strings.TrimPrefix(err.Error(), ErrTemplate.Error()+": "), hint)
		}
	}
	installCtx := TemplateContext{Params: map[string]any{}, Ports: map[string]int{}, Weft: "/usr/local/bin/weft",
		Node: NodeInfo{PeerID: "12D3KooWSample"}, Partition: PartitionInfo{Software: "/srv/weft/software/sample"}}
	const installHint = " (install runs once per node for all instances: it can use .Weft, .Node and .Partition.Software)"
	for i, c := range r.Install.Commands {
		try(fmt.Sprintf("install.commands.%d", i), c, installCtx, installHint)
	}
	for _, k := range sortedKeys(r.Install.Env) {
		try("install.env."+k, r.Install.Env[k], installCtx, installHint)
	}
	for _, tn := range sortedKeys(r.Types) {
		t := r.Types[tn]
		ctx := r.sampleContext(t, tn)
		at := "types." + tn
		for i, pr := range t.Processes {
			pp := fmt.Sprintf("%s.processes.%d", at, i)
			try(pp+".command", pr.Command, ctx, "")
			for j, a := range pr.Args {
				try(fmt.Sprintf("%s.args.%d", pp, j), a, ctx, "")
			}
			for _, k := range sortedKeys(pr.Env) {
				try(pp+".env."+k, pr.Env[k], ctx, "")
			}
			try(pp+".dir", pr.Dir, ctx, "")
		}
		for i, pr := range t.Promises {
			pp := fmt.Sprintf("%s.promises.%d", at, i)
			try(pp+".target", pr.Target, ctx, "")
			try(pp+".command", pr.Command, ctx, "")
			try(pp+".expect_body", pr.ExpectBody, ctx, "")
		}
		for _, k := range sortedKeys(t.Connection) {
			try(at+".connection."+k, t.Connection[k], ctx, "")
		}
		for i, f := range t.Files {
			if f.Template {
				try(fmt.Sprintf("%s.files.%d.content", at, i), f.Content, ctx, "")
			}
		}
	}
}
