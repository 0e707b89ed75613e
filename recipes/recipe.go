package recipes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// Errors returned by this package. Parse errors wrap ErrInvalid; use
// errors.As with *LintErrors to get every problem with its line.
var (
	// ErrInvalid means a recipe file is not a valid recipe.
	ErrInvalid = errors.New("recipes: invalid recipe")
	// ErrParams means request parameters do not match the recipe's schema.
	ErrParams = errors.New("recipes: invalid parameters")
	// ErrUnknownType means a software type the recipe does not declare.
	ErrUnknownType = errors.New("recipes: unknown software type")
	// ErrTemplate means a template failed to parse or render.
	ErrTemplate = errors.New("recipes: template")
	// ErrTooLarge means a recipe file is over MaxRecipeBytes.
	ErrTooLarge = errors.New("recipes: recipe too large")
)

// MaxRecipeBytes bounds the size of a recipe file (inline files included).
const MaxRecipeBytes = 4 << 20

// Recipe is a parsed, normalized recipe: what software an instance needs and
// how to run it. Parse fills every default, so two files that mean the same
// thing yield equal Recipes and the same CID.
//
// Templated strings (process commands, args, env, dirs, promise targets,
// connection values, per-instance files) are kept as written; Render fills
// them in for one instance with a TemplateContext.
type Recipe struct {
	// Name identifies the recipe for people (not unique; the CID is).
	Name string `toml:"name" cbor:"name" json:"name"`
	// Version is free text, e.g. "1.2.0".
	Version string `toml:"version" cbor:"version" json:"version"`
	// Description says what the recipe runs.
	Description string `toml:"description" cbor:"description,omitempty" json:"description,omitempty"`
	// DefaultType is the software type used when a request names none. When
	// the file leaves it out: "default" if such a type exists, else the only type.
	DefaultType string `toml:"default_type" cbor:"default_type" json:"default_type"`
	// Params is the parameter schema shared by every software type.
	Params map[string]*Param `toml:"params" cbor:"params,omitempty" json:"params,omitempty"`
	// Resources are what one instance needs; software types may override.
	Resources Resources `toml:"resources" cbor:"resources" json:"resources"`
	// Install is run once per node per recipe CID, in the software directory.
	Install Install `toml:"install" cbor:"install,omitempty" json:"install,omitzero"`
	// Files are written into the software directory before Install runs
	// (shared by every instance, never templated).
	Files []File `toml:"files" cbor:"files,omitempty" json:"files,omitempty"`
	// Types are the software types, by name.
	Types map[string]*SoftwareType `toml:"types" cbor:"types" json:"types"`
}

// SoftwareType is one way to run the recipe (SlapOS's software type).
type SoftwareType struct {
	// Description says what this type runs.
	Description string `toml:"description" cbor:"description,omitempty" json:"description,omitempty"`
	// Params adds or overrides parameters of the recipe's schema for this type.
	Params map[string]*Param `toml:"params" cbor:"params,omitempty" json:"params,omitempty"`
	// Batch marks a job that runs to completion: when every process has
	// exited with status 0, the partition's output directory
	// (TemplateContext.Partition.Out) becomes a result addressed by CID.
	Batch bool `toml:"batch" cbor:"batch,omitempty" json:"batch,omitempty"`
	// Timeout bounds a batch run (0: no bound). Ignored for services.
	Timeout Duration `toml:"timeout" cbor:"timeout,omitempty" json:"timeout,omitempty"`
	// Resources are what one instance of this type needs. Normalized: the
	// recipe's resources where the type sets none.
	Resources Resources `toml:"resources" cbor:"resources" json:"resources"`
	// Ports names the TCP ports the instance needs; the partition allocates
	// one port per name from its range (TemplateContext.Ports).
	Ports []string `toml:"ports" cbor:"ports,omitempty" json:"ports,omitempty"`
	// Processes are started in order and supervised.
	Processes []Process `toml:"processes" cbor:"processes" json:"processes"`
	// Promises are the instance's health checks.
	Promises []Promise `toml:"promises" cbor:"promises,omitempty" json:"promises,omitempty"`
	// Connection are the connection parameters published to the requester:
	// name → template (e.g. url = "http://{{.Host}}:{{.Ports.http}}/").
	Connection map[string]string `toml:"connection" cbor:"connection,omitempty" json:"connection,omitempty"`
	// Files are written into the partition directory for each instance
	// before the processes start; Template ones are rendered first.
	Files []File `toml:"files" cbor:"files,omitempty" json:"files,omitempty"`
}

// Process is one supervised OS process. Command, Args, Env values and Dir
// are templates.
type Process struct {
	// Name is unique within the software type; logs are named after it.
	Name string `toml:"name" cbor:"name" json:"name"`
	// Command is the executable: an absolute path, or a name looked up in PATH.
	Command string `toml:"command" cbor:"command" json:"command"`
	// Args are the arguments after the command.
	Args []string `toml:"args" cbor:"args,omitempty" json:"args,omitempty"`
	// Env are extra environment variables.
	Env map[string]string `toml:"env" cbor:"env,omitempty" json:"env,omitempty"`
	// Dir is the working directory. Normalized default: "{{.Partition.Dir}}".
	Dir string `toml:"dir" cbor:"dir" json:"dir"`
	// Restart says when the supervisor restarts the process. Normalized
	// default: always for services, never for batch types.
	Restart RestartPolicy `toml:"restart" cbor:"restart" json:"restart"`
}

// Promise is a health check (SlapOS's promise).
type Promise struct {
	// Name is unique within the software type.
	Name string `toml:"name" cbor:"name" json:"name"`
	// Kind is tcp, http or command.
	Kind PromiseKind `toml:"kind" cbor:"kind" json:"kind"`
	// Target is host:port for tcp, a URL for http (templates).
	Target string `toml:"target" cbor:"target,omitempty" json:"target,omitempty"`
	// Command is a /bin/sh script for command promises (template); exit 0 is success.
	Command string `toml:"command" cbor:"command,omitempty" json:"command,omitempty"`
	// ExpectStatus is the HTTP status an http promise wants. Default 200.
	ExpectStatus int `toml:"expect_status" cbor:"expect_status,omitempty" json:"expect_status,omitempty"`
	// ExpectBody, if set, must occur in an http promise's response body (template).
	ExpectBody string `toml:"expect_body" cbor:"expect_body,omitempty" json:"expect_body,omitempty"`
	// Period between anomaly checks. Default 10s.
	Period Duration `toml:"period" cbor:"period" json:"period"`
	// Timeout of one check. Default 5s; must not exceed Period.
	Timeout Duration `toml:"timeout" cbor:"timeout" json:"timeout"`
	// When says whether the promise is a test (checked right after start until
	// it passes), an anomaly check (periodically), or both. Default both.
	When PromiseWhen `toml:"when" cbor:"when" json:"when"`
}

// Resources are what one instance needs and is limited to.
type Resources struct {
	// CPUMillis is CPU in thousandths of a core (1000 = one core). Default 100.
	CPUMillis int64 `toml:"cpu_millis" cbor:"cpu_millis" json:"cpu_millis"`
	// MemoryBytes is the memory limit. TOML: integer bytes or "64MiB". Default 64 MiB.
	MemoryBytes Bytes `toml:"memory" cbor:"memory" json:"memory_bytes"`
	// DiskBytes is the disk quota of the partition. Default 256 MiB.
	DiskBytes Bytes `toml:"disk" cbor:"disk" json:"disk_bytes"`
}

// Install is the per-node installation of a recipe, run once per recipe CID
// in the software directory (TemplateContext.Partition.Software) and cached.
type Install struct {
	// Commands are /bin/sh scripts run in order; templates over Weft, Node and
	// Partition.Software only (no instance is involved).
	Commands []string `toml:"commands" cbor:"commands,omitempty" json:"commands,omitempty"`
	// Env are extra environment variables for the commands.
	Env map[string]string `toml:"env" cbor:"env,omitempty" json:"env,omitempty"`
	// Timeout bounds the whole install. Default 10m when there are commands.
	Timeout Duration `toml:"timeout" cbor:"timeout,omitempty" json:"timeout,omitempty"`
}

// File is a file the runtime writes: inline Content, or an artifact by CID
// fetched from the grid. Source (a path relative to the recipe file) is only
// meaningful before publishing, which stores it and replaces it by its CID.
type File struct {
	// Path is relative to the software dir (recipe files) or the partition
	// dir (software type files); it may not leave it.
	Path string `toml:"path" cbor:"path" json:"path"`
	// Content is the inline content.
	Content string `toml:"content" cbor:"content,omitempty" json:"content,omitempty"`
	// CID is the content's CID in the content store (a blob).
	CID string `toml:"cid" cbor:"cid,omitempty" json:"cid,omitempty"`
	// Source is a local path, resolved to CID by publish.
	Source string `toml:"source" cbor:"source,omitempty" json:"source,omitempty"`
	// Mode is the permission bits. TOML: "0755" or 0o755. Default 0644.
	Mode FileMode `toml:"mode" cbor:"mode" json:"mode"`
	// Template renders Content with the instance's TemplateContext (software
	// type files with inline content only).
	Template bool `toml:"template" cbor:"template,omitempty" json:"template,omitempty"`
}

// ParamType is the type of a parameter.
type ParamType string

// Parameter types.
const (
	TypeString ParamType = "string"
	TypeInt    ParamType = "int"
	TypeNumber ParamType = "number"
	TypeBool   ParamType = "bool"
)

// String returns the type's name.
func (t ParamType) String() string { return string(t) }

// Param describes one request parameter.
type Param struct {
	// Type is string, int, number or bool. Default string.
	Type ParamType `toml:"type" cbor:"type" json:"type"`
	// Description tells the requester what the parameter does.
	Description string `toml:"description" cbor:"description,omitempty" json:"description,omitempty"`
	// Default is used when the request leaves the parameter out. Normalized
	// to the Go type of Type (string, int64, float64, bool).
	Default any `toml:"default" cbor:"default,omitempty" json:"default,omitempty"`
	// Required parameters have no default and must be given.
	Required bool `toml:"required" cbor:"required,omitempty" json:"required,omitempty"`
	// Enum, if set, lists the allowed values.
	Enum []any `toml:"enum" cbor:"enum,omitempty" json:"enum,omitempty"`
	// Min and Max bound int and number values (inclusive), and the length of strings.
	Min *float64 `toml:"min" cbor:"min,omitempty" json:"min,omitempty"`
	// Max: see Min.
	Max *float64 `toml:"max" cbor:"max,omitempty" json:"max,omitempty"`
	// Pattern, if set, is a regular expression (RE2) a string must match fully.
	Pattern string `toml:"pattern" cbor:"pattern,omitempty" json:"pattern,omitempty"`
}

// PromiseKind is what a promise checks.
type PromiseKind string

// Promise kinds.
const (
	PromiseTCP     PromiseKind = "tcp"
	PromiseHTTP    PromiseKind = "http"
	PromiseCommand PromiseKind = "command"
)

// String returns the kind's name.
func (k PromiseKind) String() string { return string(k) }

// PromiseWhen says when a promise is checked.
type PromiseWhen string

// When promises are checked.
const (
	// WhenTest: after start, until it passes once (the instance is "ready").
	WhenTest PromiseWhen = "test"
	// WhenAnomaly: every Period while the instance runs.
	WhenAnomaly PromiseWhen = "anomaly"
	// WhenBoth: first as a test, then as an anomaly check.
	WhenBoth PromiseWhen = "both"
)

// String returns the value's name.
func (w PromiseWhen) String() string { return string(w) }

// IsTest reports whether the promise gates readiness after start.
func (w PromiseWhen) IsTest() bool { return w == WhenTest || w == WhenBoth }

// IsAnomaly reports whether the promise is checked periodically.
func (w PromiseWhen) IsAnomaly() bool { return w == WhenAnomaly || w == WhenBoth }

// RestartPolicy says when a supervisor restarts an exited process.
type RestartPolicy string

// Restart policies.
const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartNever     RestartPolicy = "never"
)

// String returns the policy's name.
func (p RestartPolicy) String() string { return string(p) }

// Duration is a time.Duration written in TOML as "10s", "1m30s" or an
// integer number of seconds, and in JSON as a string.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write e.g. \"10s\", \"1m30s\")", x)
		}
		*d = Duration(p)
	case int64:
		*d = Duration(time.Duration(x) * time.Second)
	default:
		return fmt.Errorf("a duration must be a string like \"10s\", not %T", v)
	}
	if *d < 0 {
		return errors.New("a duration cannot be negative")
	}
	return nil
}

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// UnmarshalJSON reads a string duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("recipes: duration %s: %w", b, err)
	}
	return d.UnmarshalTOML(s)
}

// Bytes is a size in bytes, written in TOML as an integer or with a unit:
// "512KiB", "64MiB", "2GiB", "1GB".
type Bytes int64

// UnmarshalTOML implements toml.Unmarshaler.
func (b *Bytes) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return errors.New("a size cannot be negative")
		}
		*b = Bytes(x)
		return nil
	case string:
		n, err := ParseBytes(x)
		if err != nil {
			return err
		}
		*b = Bytes(n)
		return nil
	}
	return fmt.Errorf("a size must be an integer or a string like \"64MiB\", not %T", v)
}

// ParseBytes parses "64MiB", "1GB", "1024" and similar.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.TrimSpace(t[i:])
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1000, "KIB": 1 << 10, "M": 1 << 20, "MB": 1e6,
		"MIB": 1 << 20, "G": 1 << 30, "GB": 1e9, "GIB": 1 << 30, "T": 1 << 40, "TB": 1e12, "TIB": 1 << 40}[strings.ToUpper(unit)]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (write e.g. \"64MiB\", \"2GiB\" or bytes as an integer)", s)
	}
	return n * mult, nil
}

// FileMode is a file's permission bits, written in TOML as "0755" or 0o755.
type FileMode uint32

// Perm returns m as an os.FileMode.
func (m FileMode) Perm() os.FileMode { return os.FileMode(m) & os.ModePerm }

// UnmarshalTOML implements toml.Unmarshaler.
func (m *FileMode) UnmarshalTOML(v any) error {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		p, err := strconv.ParseInt(x, 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q is not octal (write e.g. \"0755\")", x)
		}
		n = p
	default:
		return fmt.Errorf("a mode must be a string like \"0755\", not %T", v)
	}
	if n < 0 || n > 0o777 {
		return fmt.Errorf("mode %o is out of range (0 to 0777)", n)
	}
	*m = FileMode(n)
	return nil
}

// MarshalJSON writes the mode as an octal string.
func (m FileMode) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("\"%04o\"", uint32(m))), nil
}

// UnmarshalJSON reads an octal string ("0755") or a number.
func (m *FileMode) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		return m.UnmarshalTOML(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("recipes: mode %s: %w", b, err)
	}
	return m.UnmarshalTOML(n)
}

// Document is a recipe as the API and the CLI show it: its CID and its
// normalized fields.
type Document struct {
	// CID is the recipe's CID.
	CID string `json:"cid"`
	*Recipe
}

// Doc returns r's Document.
func (r *Recipe) Doc() Document { return Document{CID: r.CID().String(), Recipe: r} }

// ResolveSources stores every file given by source (a path relative to
// baseDir, or absolute) with put and replaces its Source by the CID put
// returns. Call it before CID: it changes the recipe. Publishing does.
func (r *Recipe) ResolveSources(baseDir string, put func(path string) (cid.Cid, error)) error {
	resolve := func(fs []File) error {
		for i := range fs {
			f := &fs[i]
			if f.Source == "" {
				continue
			}
			p := f.Source
			if !filepath.IsAbs(p) {
				p = filepath.Join(baseDir, p)
			}
			c, err := put(p)
			if err != nil {
				return fmt.Errorf("recipes: file %s: source %s: %w", f.Path, f.Source, err)
			}
			f.CID, f.Source = c.String(), ""
		}
		return nil
	}
	if err := resolve(r.Files); err != nil {
		return err
	}
	for _, n := range r.TypeNames() {
		if err := resolve(r.Types[n].Files); err != nil {
			return err
		}
	}
	return nil
}

// Type returns the software type called name, or the default type when
// name is empty.
func (r *Recipe) Type(name string) (*SoftwareType, error) {
	if name == "" {
		name = r.DefaultType
	}
	t, ok := r.Types[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (recipe %s has: %s)", ErrUnknownType, name, r.Name, strings.Join(r.TypeNames(), ", "))
	}
	return t, nil
}

// TypeNames returns the software type names, sorted.
func (r *Recipe) TypeNames() []string { return sortedKeys(r.Types) }

// ArtifactCIDs returns the CIDs of every file referenced by CID (recipe and
// software type files), without duplicates, in a stable order.
func (r *Recipe) ArtifactCIDs() []cid.Cid {
	seen := map[string]bool{}
	var out []cid.Cid
	add := func(fs []File) {
		for _, f := range fs {
			if f.CID == "" || seen[f.CID] {
				continue
			}
			seen[f.CID] = true
			if c, err := cid.Decode(f.CID); err == nil {
				out = append(out, c)
			}
		}
	}
	add(r.Files)
	for _, n := range r.TypeNames() {
		add(r.Types[n].Files)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
