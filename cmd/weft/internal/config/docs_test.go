package config_test

// These tests keep docs/config.md and docs/weft.example.toml true to the
// code: every key of the config structs must be documented and set in the
// example, the example must load with the strict loader and hold exactly
// the defaults, and every flag of 'weft node' must be documented.

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/cli"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/nodecmd"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/ledgerp2p"
	"github.com/weftgrid/weft/recipes/transfer"
	"github.com/weftgrid/weft/scheduler"
)

var (
	docsDir     = filepath.Join("..", "..", "..", "..", "docs")
	exampleFile = filepath.Join(docsDir, "weft.example.toml")
	configDoc   = filepath.Join(docsDir, "config.md")
)

// configKeys returns every key of the config structs as dotted TOML paths
// ("node.api", "market.prices.per_core_hour"), leaves only, and the tables
// ("node", "market.prices").
func configKeys(t *testing.T) (leaves, tables []string) {
	t.Helper()
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				t.Fatalf("config: field %s%s has no toml tag", prefix, f.Name)
			}
			key := prefix + name
			if f.Type.Kind() == reflect.Struct {
				tables = append(tables, key)
				walk(f.Type, key+".")
				continue
			}
			leaves = append(leaves, key)
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	if len(leaves) < 40 {
		t.Fatalf("found only %d config keys: the walk is broken", len(leaves))
	}
	return leaves, tables
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExampleConfigLoadsStrictly(t *testing.T) {
	c, err := config.Load(exampleFile)
	if err != nil {
		t.Fatalf("docs/weft.example.toml does not load: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("docs/weft.example.toml does not validate: %v", err)
	}
	// The example says every value in it is the default.
	got, want := normalize(reflect.ValueOf(c)), normalize(reflect.ValueOf(config.Default()))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("docs/weft.example.toml differs from config.Default():\n got  %+v\n want %+v", c, config.Default())
	}
}

func TestExampleConfigSetsEveryKey(t *testing.T) {
	var sink config.Config
	md, err := toml.DecodeFile(exampleFile, &sink)
	if err != nil {
		t.Fatal(err)
	}
	leaves, _ := configKeys(t)
	for _, k := range leaves {
		if !md.IsDefined(strings.Split(k, ".")...) {
			t.Errorf("docs/weft.example.toml does not set %s", k)
		}
	}
}

func TestConfigDocCoversEveryKey(t *testing.T) {
	doc := readFile(t, configDoc)
	leaves, tables := configKeys(t)
	known := map[string]bool{}
	for _, k := range append(append([]string{}, leaves...), tables...) {
		known[k] = true
	}
	for _, k := range leaves {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/config.md does not document `%s`", k)
		}
	}
	// And documents no key that does not exist.
	re := regexp.MustCompile("`((?:node|recipes|partitions|market|ledger)\\.[a-z_.]+)`")
	for _, m := range re.FindAllStringSubmatch(doc, -1) {
		if strings.HasSuffix(m[1], ".go") || strings.HasSuffix(m[1], ".md") {
			continue // a file name, e.g. `node.go`
		}
		if !known[m[1]] {
			t.Errorf("docs/config.md mentions `%s`, which is not a config key", m[1])
		}
	}
}

// The command tree of the binary: the client commands plus 'weft node'.
func init() { cli.Register(nodecmd.Order, nodecmd.New) }

func TestConfigDocCoversEveryNodeFlag(t *testing.T) {
	doc := readFile(t, configDoc)
	root := cli.NewRoot(new(strings.Builder), new(strings.Builder))
	node, _, err := root.Find([]string{"node"})
	if err != nil || node.Name() != "node" {
		t.Fatalf("no node command: %v", err)
	}
	var flags []string
	visit := func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != "json" {
			flags = append(flags, f.Name)
		}
	}
	node.LocalFlags().VisitAll(visit)
	root.PersistentFlags().VisitAll(visit)
	sort.Strings(flags)
	if len(flags) < 20 {
		t.Fatalf("found only %d flags of weft node: %v", len(flags), flags)
	}
	for _, f := range flags {
		if !strings.Contains(doc, "`--"+f) {
			t.Errorf("docs/config.md does not document the flag --%s of weft node", f)
		}
	}
}

// TestNodeFlagHelpNamesItsKey checks that 'weft node --help' names, in
// brackets, the config key of every flag, as docs/cli.md promises: the key
// is the one the "Flags of weft node at a glance" table of docs/config.md
// gives.
func TestNodeFlagHelpNamesItsKey(t *testing.T) {
	doc := readFile(t, configDoc)
	re := regexp.MustCompile("(?m)^\\| `--([a-z-]+)[^`]*` \\| `([a-z_.]+)` \\|$")
	keys := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(doc, -1) {
		keys[m[1]] = m[2]
	}
	root := cli.NewRoot(new(strings.Builder), new(strings.Builder))
	node, _, err := root.Find([]string{"node"})
	if err != nil || node.Name() != "node" {
		t.Fatalf("no node command: %v", err)
	}
	n := 0
	node.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Name == "config" {
			return
		}
		n++
		key, ok := keys[f.Name]
		if !ok {
			t.Errorf("docs/config.md's table of flags has no row for --%s", f.Name)
			return
		}
		if !strings.Contains(f.Usage, "["+key+"]") {
			t.Errorf("weft node --help: --%s does not name its key [%s]: %q", f.Name, key, f.Usage)
		}
	})
	if n < 20 {
		t.Fatalf("found only %d flags of weft node", n)
	}
}

// TestProtocolsDocNamesEveryProtocol checks docs/protocols.md against the
// exported protocol IDs, topic names, message kinds, domains and formats.
func TestProtocolsDocNamesEveryProtocol(t *testing.T) {
	doc := readFile(t, filepath.Join(docsDir, "protocols.md"))
	want := []string{
		"`<prefix>" + transfer.ProtocolSuffix + "`",
		"`<prefix>" + ledger.SyncProtocol + "`",
		"`<prefix>/topic/" + ledgerp2p.TopicName + "`",
		"`" + strings.TrimSuffix(ledger.EntryDomain, "\x00") + "`",
		"`" + ledger.ExportFormat + "`",
		"`" + ledger.ProofFormat + "`",
	}
	n := 0
	for k := scheduler.Kind(1); !strings.HasPrefix(k.String(), "kind("); k++ {
		want = append(want, "| `"+k.String()+"` |")
		n++
	}
	if n < 8 {
		t.Fatalf("found only %d market kinds", n)
	}
	for _, w := range want {
		if !strings.Contains(doc, w) {
			t.Errorf("docs/protocols.md does not mention %s", w)
		}
	}
}

// normalize turns v into a comparable tree where empty slices and maps
// equal nil ones ("allow = []" in the file, nil in Default()).
func normalize(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out[v.Type().Field(i).Name] = normalize(v.Field(i))
			}
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = normalize(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = normalize(v.MapIndex(k))
		}
		return out
	default:
		return v.Interface()
	}
}
