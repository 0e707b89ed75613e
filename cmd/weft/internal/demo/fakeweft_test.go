package demo

// A stand-in for the weft binary, used to test the demo's orchestration and
// clean-up without the real subsystems: the test binary re-executes itself
// with WEFT_DEMO_FAKE=1 and then behaves as `weft node` and the client
// commands the demo calls, following their contracts. Nodes share state
// through files in the grid folder (the parent of every data dir). The web
// server runs as a child process of its host in its own process group, like
// an instance in a partition, so that killing a host and cleaning up are
// tested against processes that a plain process-group kill would miss.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

const fakeEnv = "WEFT_DEMO_FAKE"

type fakeInstance struct {
	Name       string            `json:"name"`
	InstanceID string            `json:"instance_id"`
	Node       string            `json:"node"`
	State      string            `json:"state"`
	Connection map[string]string `json:"connection"`
	Epoch      int               `json:"epoch"`
	Requester  string            `json:"requester"`
	Label      string            `json:"label"` // required host label k=v
	Message    string            `json:"message"`
}

type fakePeer struct {
	PeerID string   `json:"peer_id"`
	PID    int      `json:"pid"`
	Labels []string `json:"labels"`
}

func fakeMain(args []string) int {
	// weft [--data-dir D] CMD ... [--json]
	var dataDir string
	var rest []string
	jsonOut := false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--data-dir":
			dataDir = args[i+1]
			i++
		case "--json":
			jsonOut = true
		default:
			rest = append(rest, args[i])
		}
	}
	if len(rest) == 0 {
		fmt.Fprintln(os.Stderr, "fake weft: no command")
		return 2
	}
	f := &fake{dir: dataDir, root: filepath.Dir(dataDir), json: jsonOut}
	var err error
	switch rest[0] {
	case "serve":
		err = fakeServe(rest[1])
	case "node":
		if len(rest) > 1 && rest[1] == "--help" {
			fmt.Println("Flags:\n      --api string\n      --bootstrap strings\n      --label stringArray\n      --listen strings\n      --partitions int\n      --preset string\n      --slice duration")
			return 0
		}
		err = f.node(rest[1:])
	case "recipe":
		err = f.recipe(rest[1:])
	case "request":
		err = f.request(rest[1:])
	case "instance":
		err = f.show(rest[2])
	case "job":
		err = f.job(rest[1:])
	case "ledger":
		err = f.ledger(rest[1:])
	case "ui":
		// As the real CLI: a one-time login code, got with the token.
		var c *api.Client
		if c, err = api.NewClientFromDataDir(f.dir); err == nil {
			var code api.LoginCode
			if err = c.Post(context.Background(), "/v1/login-code", nil, &code); err == nil {
				err = f.print(map[string]string{"url": c.Base + "/login?code=" + code.Code})
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "Error: unknown command %q for \"weft\"\n", rest[0])
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake weft:", err)
		return 1
	}
	return 0
}

type fake struct {
	dir, root string
	json      bool
}

func (f *fake) name() string    { return filepath.Base(f.dir) }
func peerOf(name string) string { return "12D3KooWFake" + name }

func writeJSON(path string, v any) {
	_ = os.MkdirAll(filepath.Dir(path), 0o700)
	b, _ := json.Marshal(v)
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	_ = os.WriteFile(tmp, b, 0o600)
	_ = os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// livePeers returns node name → peer of the nodes whose process is alive.
func (f *fake) livePeers() map[string]fakePeer {
	out := map[string]fakePeer{}
	ents, _ := os.ReadDir(filepath.Join(f.root, "peers"))
	for _, e := range ents {
		var p fakePeer
		if readJSON(filepath.Join(f.root, "peers", e.Name()), &p) == nil && alive(p.PID) {
			out[strings.TrimSuffix(e.Name(), ".json")] = p
		}
	}
	return out
}

func (f *fake) instances(requester string) []fakeInstance {
	var out []fakeInstance
	paths, _ := filepath.Glob(filepath.Join(f.root, "instances", requester, "*.json"))
	for _, p := range paths {
		var in fakeInstance
		if readJSON(p, &in) == nil {
			out = append(out, in)
		}
	}
	return out
}

func (f *fake) instPath(requester, name string) string {
	return filepath.Join(f.root, "instances", requester, name+".json")
}

// place picks a host for in: the requester first (nearest), then nodes by
// name, among the live nodes that carry the required label, except avoid.
func (f *fake) place(requester string, in *fakeInstance, avoid string) (string, []string) {
	live := f.livePeers()
	var names []string
	for n := range live {
		names = append(names, n)
	}
	sort.Strings(names)
	fits := func(n string) bool {
		p, ok := live[n]
		return ok && peerOf(n) != avoid && (in.Label == "" || slices.Contains(p.Labels, in.Label))
	}
	var bidders []string
	for _, n := range names {
		if fits(n) {
			bidders = append(bidders, peerOf(n))
		}
	}
	for _, n := range append([]string{requester}, names...) {
		if fits(n) {
			return peerOf(n), bidders
		}
	}
	return "", bidders
}

func (f *fake) node(args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	slice := fs.Duration("slice", time.Second, "")
	_ = fs.String("api", "", "")
	_ = fs.String("listen", "", "")
	_ = fs.String("preset", "", "")
	_ = fs.Int("partitions", 0, "")
	_ = fs.String("data-dir", "", "")
	var boots, labels []string
	fs.Func("bootstrap", "", func(s string) error { boots = append(boots, s); return nil })
	fs.Func("label", "", func(s string) error { labels = append(labels, s); return nil })
	if err := fs.Parse(args); err != nil {
		return err
	}
	me := f.name()
	writeJSON(filepath.Join(f.root, "peers", me+".json"), fakePeer{PeerID: peerOf(me), PID: os.Getpid(), Labels: labels})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := api.NewServer("faketoken0123456789012345678901234", nil)
	srv.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, map[string]any{
			"peer_id": peerOf(me), "addrs": []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + peerOf(me)},
			"members": len(f.livePeers()), "peers": len(f.livePeers()) - 1, "grid": "public",
		})
	})
	srv.HandleFunc("GET /v1/auctions", func(w http.ResponseWriter, r *http.Request) {
		var as []map[string]any
		_ = readJSON(filepath.Join(f.root, "auctions", me+".json"), &as)
		api.WriteJSON(w, 200, as)
	})
	srv.HandlePublic("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "<!doctype html><html><body>fake dashboard</body></html>")
	}))
	go func() { _ = srv.Serve(ln) }()
	if err := api.WriteEndpoint(f.dir, api.Endpoint{Addr: ln.Addr().String(), Token: "faketoken0123456789012345678901234"}); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	children := map[string]*exec.Cmd{}
	tick := time.NewTicker(50 * time.Millisecond)
	lastSlice := time.Now()
	for {
		select {
		case <-sig:
			for _, c := range children {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
			return nil
		case <-tick.C:
		}
		live := f.livePeers()
		reqs, _ := os.ReadDir(filepath.Join(f.root, "instances"))
		billing := time.Since(lastSlice) >= *slice
		if billing {
			lastSlice = time.Now()
		}
		for _, rq := range reqs {
			for _, in := range f.instances(rq.Name()) {
				key := rq.Name() + "/" + in.Name
				p := f.instPath(rq.Name(), in.Name)
				switch {
				case in.Node == peerOf(me) && in.State == "started" && children[key] == nil:
					cmd := exec.Command(os.Args[0], "serve", in.Message)
					cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
					out, _ := cmd.StdoutPipe()
					if err := cmd.Start(); err != nil {
						continue
					}
					var port int
					_, _ = fmt.Fscan(out, &port)
					children[key] = cmd
					in.Connection = map[string]string{"url": fmt.Sprintf("http://127.0.0.1:%d/", port)}
					writeJSON(p, in)
				case in.Node == peerOf(me) && children[key] != nil && billing:
					lf, _ := os.OpenFile(filepath.Join(f.root, "ledger.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
					fmt.Fprintf(lf, "receipt %s %s %s %d %d\n", in.InstanceID, in.Requester, in.Node, in.Epoch, time.Now().UnixNano())
					lf.Close()
				case rq.Name() == me && in.State == "started":
					host := strings.TrimPrefix(in.Node, "12D3KooWFake")
					if _, ok := live[host]; !ok {
						node, _ := f.place(me, &in, in.Node)
						if node != "" {
							in.Node, in.Epoch, in.Connection = node, in.Epoch+1, nil
							writeJSON(p, in)
						}
					}
				}
			}
		}
	}
}

func fakeServe(message string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<html><body>%s</body></html>\n", message)
	}))
}

func (f *fake) print(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}

func (f *fake) recipe(args []string) error {
	switch args[0] {
	case "publish":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		cid := "bafyfake" + hex.EncodeToString(sum[:8])
		_ = os.MkdirAll(filepath.Join(f.root, "recipes"), 0o700)
		if err := os.WriteFile(filepath.Join(f.root, "recipes", cid), b, 0o600); err != nil {
			return err
		}
		return f.print(map[string]string{"cid": cid})
	case "show":
		if _, err := os.Stat(filepath.Join(f.root, "recipes", args[1])); err != nil {
			return fmt.Errorf("recipe %s not found", args[1])
		}
		return f.print(map[string]string{"cid": args[1]})
	}
	return fmt.Errorf("unknown recipe command")
}

func (f *fake) request(args []string) error {
	name := args[0]
	in := fakeInstance{Name: name, InstanceID: "inst-" + f.name() + "-" + name, State: "started", Requester: peerOf(f.name()), Epoch: 1}
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--param":
			in.Message = strings.TrimPrefix(args[i+1], "message=")
			i++
		case "--sla":
			in.Label = strings.TrimPrefix(args[i+1], "label.")
			i++
		case "--recipe":
			i++
		}
	}
	node, bidders := f.place(f.name(), &in, "")
	if node == "" {
		return fmt.Errorf("no node placed %s", name)
	}
	in.Node = node
	p := f.instPath(f.name(), name)
	writeJSON(p, in)
	var as []map[string]any
	_ = readJSON(filepath.Join(f.root, "auctions", f.name()+".json"), &as)
	var bids []map[string]any
	for _, b := range bidders {
		bids = append(bids, map[string]any{"node": b, "price": 10, "rtt_ms": 0.2})
	}
	as = append(as, map[string]any{"request": name, "instance_id": in.InstanceID, "bids": bids, "winner": node})
	writeJSON(filepath.Join(f.root, "auctions", f.name()+".json"), as)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var cur fakeInstance
		if readJSON(p, &cur) == nil && cur.Connection["url"] != "" {
			return f.print(cur)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("instance %s did not start", name)
}

func (f *fake) show(name string) error {
	var in fakeInstance
	if err := readJSON(f.instPath(f.name(), name), &in); err != nil {
		return err
	}
	return f.print(in)
}

func (f *fake) job(args []string) error {
	switch args[0] {
	case "run":
		n := 0
		for i, a := range args {
			if a == "--param" {
				n, _ = strconv.Atoi(strings.TrimPrefix(args[i+1], "n="))
			}
		}
		sieve := make([]bool, n)
		c := 0
		for i := 2; i < n; i++ {
			if !sieve[i] {
				c++
				for j := i * i; j < n; j += i {
					sieve[j] = true
				}
			}
		}
		cid := fmt.Sprintf("bafyresult%d", n)
		d := filepath.Join(f.root, "results", cid)
		_ = os.MkdirAll(d, 0o700)
		if err := os.WriteFile(filepath.Join(d, "count.txt"), []byte(fmt.Sprintf("%d\n", c)), 0o600); err != nil {
			return err
		}
		return f.print(map[string]string{"state": "succeeded", "result": cid})
	case "result":
		out := args[3]
		b, err := os.ReadFile(filepath.Join(f.root, "results", args[1], "count.txt"))
		if err != nil {
			return err
		}
		_ = os.MkdirAll(out, 0o700)
		return os.WriteFile(filepath.Join(out, "count.txt"), b, 0o600)
	}
	return fmt.Errorf("unknown job command")
}

func (f *fake) ledger(args []string) error {
	b, _ := os.ReadFile(filepath.Join(f.root, "ledger.txt"))
	n := strings.Count(string(b), "\n")
	switch args[0] {
	case "audit":
		sum := sha256.Sum256(b)
		return f.print(map[string]any{"ok": true, "entries": n, "receipts": n, "root": hex.EncodeToString(sum[:]), "problems": []any{}})
	case "statement":
		if f.json {
			lines := []map[string]any{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				fs := strings.Fields(l)
				if len(fs) == 6 && fs[2] == args[2] {
					lines = append(lines, map[string]any{"instance_id": fs[1], "requester": fs[2], "provider": fs[3], "epoch": fs[4], "status": "acked"})
				}
			}
			return f.print(map[string]any{"party": args[2], "lines": lines, "total": map[string]int{"receipts": len(lines)}})
		}
		fmt.Printf("requester %s: %d receipts\n", args[2], n)
		return nil
	}
	return fmt.Errorf("unknown ledger command")
}
