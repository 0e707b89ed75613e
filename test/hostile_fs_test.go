package test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The hostile-recipe cases of root-side file safety, each on a real node
// running as root: a batch result walked while a leftover swaps its
// directories, an install's chown raced by another install's leftover
// watcher, an install leaving a background process, and installs that
// fork-bomb or hog memory. Each asserts the attack is blocked and that the
// node still serves another request afterwards.

func TestHostileFSRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the node walks tenants' trees as root only when it runs as root")
	}
	src := os.Getenv("WEFT_BIN")
	if src == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	n := hsbStart(t, src, nil)
	var status struct {
		Partitions struct {
			Limits struct {
				Pids   bool `json:"pids"`
				Memory bool `json:"memory"`
			} `json:"limits"`
		} `json:"partitions"`
	}
	n.json(t, &status, "status", "--json")
	st := status.Partitions
	secrets := hfsSecrets(t, n.dir)

	t.Run("result walk raced by a setsid leftover swapping out/ for a link", func(t *testing.T) {
		// The job's process starts a swapper in a session of its own and
		// exits 0 at once; the swapper exchanges out/sub with a symbolic
		// link to the data dir as fast as it can, and says it is running.
		script := fmt.Sprintf(`mkdir -p $WEFT_OUT/sub && echo result > $WEFT_OUT/sub/result
cd $WEFT_OUT
setsid sh -c 'echo $$ > pid; while :; do mv sub real; ln -s %s sub; rm -f sub; mv real sub; done' > /dev/null 2>&1 < /dev/null &
while [ ! -s pid ]; do sleep 0.01; done
exit 0
`, n.dir)
		st := n.run(t, "hfs-swapper", hsbBatch("hfs-swapper", "", script))
		res := hfsResult(t, n, st)
		hsbNoSecrets(t, res, secrets)
		for name := range res {
			for p := range secrets {
				if filepath.Base(name) == filepath.Base(p) {
					t.Errorf("the result holds %s, a file of the node's data dir", name)
				}
			}
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(res["pid"])))
		if err != nil {
			t.Fatalf("the swapper's pid: %q", res["pid"])
		}
		if hfsAlive(pid) {
			t.Errorf("the job's leftover swapper (pid %d) outlived the job", pid)
		}
		n.destroy(t, "hfs-swapper")
		hfsServes(t, n, "hfs-after-swapper")
	})

	t.Run("install chown raced by another install's leftover watcher", func(t *testing.T) {
		// A root-owned file the watcher tries to get chowned, and a recipe
		// installed first whose script it tries to rewrite.
		victimDir := filepath.Join(filepath.Dir(n.dir), "hfs-victim")
		if err := os.Mkdir(victimDir, 0o755); err != nil {
			t.Fatal(err)
		}
		victim := filepath.Join(victimDir, "root-owned")
		if err := os.WriteFile(victim, []byte("root's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sentinel := n.run(t, "hfs-sentinel", hfsInstallRecipe("hfs-sentinel", "", "true",
			"cat $WEFT_SOFTWARE/run.sh > $WEFT_OUT/script"))
		before := n.result(t, sentinel)["script"]
		if !strings.Contains(string(before), "honest") {
			t.Fatalf("sentinel script: %q", before)
		}
		// The watcher: left running by an install, it swaps every
		// directory of every software tree for a link to the victim's
		// directory and appends to every run.sh it finds.
		watch := fmt.Sprintf(`setsid sh -c 'echo $$ > $WEFT_SOFTWARE/watcher.pid; soft=$(dirname $WEFT_SOFTWARE); `+
			`while :; do for d in $soft/*/lib; do mv $d $d.x 2>/dev/null && ln -s %s $d 2>/dev/null; done; `+
			`for f in $soft/*/run.sh; do echo "echo pwned" >> $f 2>/dev/null; done; done' > /dev/null 2>&1 < /dev/null &
while [ ! -s $WEFT_SOFTWARE/watcher.pid ]; do sleep 0.01; done`, victimDir)
		watcher := n.run(t, "hfs-watcher", hfsInstallRecipe("hfs-watcher", "", watch,
			"cat $WEFT_SOFTWARE/watcher.pid > $WEFT_OUT/pid"))
		res := n.result(t, watcher) // the install succeeded
		pid, err := strconv.Atoi(strings.TrimSpace(string(res["pid"])))
		if err != nil {
			t.Fatalf("the watcher's pid: %q", res["pid"])
		}
		if hfsAlive(pid) {
			t.Errorf("the install's background watcher (pid %d) outlived its install", pid)
		}
		// Another recipe installed after: its tree is chowned to the
		// install user and back.
		target := n.run(t, "hfs-target", hfsInstallRecipe("hfs-target", `
[[files]]
path = "lib/deep/file"
content = "lib file"
`, "ls lib/deep > /dev/null", "cat $WEFT_SOFTWARE/lib/deep/file > $WEFT_OUT/file"))
		if got := string(n.result(t, target)["file"]); got != "lib file" {
			t.Errorf("target's own file: %q", got)
		}
		var sys syscall.Stat_t
		for _, p := range []string{victim, victimDir} {
			if err := syscall.Lstat(p, &sys); err != nil {
				t.Fatal(err)
			}
			if sys.Uid != 0 || sys.Gid != 0 {
				t.Errorf("the root-owned %s now belongs to %d:%d", p, sys.Uid, sys.Gid)
			}
		}
		n.destroy(t, "hfs-sentinel")
		again := n.run(t, "hfs-sentinel2", hfsInstallRecipe("hfs-sentinel", "", "true",
			"cat $WEFT_SOFTWARE/run.sh > $WEFT_OUT/script"))
		if after := n.result(t, again)["script"]; string(after) != string(before) {
			t.Errorf("another recipe's script was rewritten: %q, was %q", after, before)
		}
		for _, id := range []string{"hfs-watcher", "hfs-target", "hfs-sentinel2"} {
			n.destroy(t, id)
		}
		hfsServes(t, n, "hfs-after-watcher")
	})

	t.Run("fork bomb in an install", func(t *testing.T) {
		if !st.Limits.Pids {
			t.Skip("no pids cgroup here: a fork bomb would not be contained")
		}
		// A bounded bomb (700 processes; the pids limit is 512), then a
		// count of the install user's live processes.
		bomb := `i=0; while [ $i -lt 700 ]; do (sleep 600 &) 2>/dev/null; i=$((i+1)); done; ` +
			`c=0; for p in /proc/[0-9]*; do [ -O $p ] && c=$((c+1)); done; echo $c > $WEFT_SOFTWARE/count; exit 0`
		st := n.run(t, "hfs-bomb", hfsInstallRecipe("hfs-bomb", `memory = "1GiB"`, bomb, "cat $WEFT_SOFTWARE/count > $WEFT_OUT/count"), "--expect-failure")
		if st.Phase == "completed" {
			res := n.result(t, st)
			c, err := strconv.Atoi(strings.TrimSpace(string(res["count"])))
			if err != nil || c <= 0 || c > 600 {
				t.Errorf("the install user had %q processes, want at most the pids limit", res["count"])
			}
		} else if !strings.Contains(st.Error, "install") {
			t.Errorf("the fork bomb's job: %s (%q), want completed or an install failure", st.Phase, st.Error)
		}
		n.destroy(t, "hfs-bomb")
		hfsServes(t, n, "hfs-after-bomb")
	})

	t.Run("memory hog in an install", func(t *testing.T) {
		if !st.Limits.Memory {
			t.Skip("no memory cgroup here: a memory hog would not be contained")
		}
		hog := `x=$(head -c 268435456 /dev/zero | tr '\0' a); echo ${#x} > $WEFT_SOFTWARE/size`
		st := n.run(t, "hfs-hog", hfsInstallRecipe("hfs-hog", "", hog, "cat $WEFT_SOFTWARE/size > $WEFT_OUT/size"), "--expect-failure")
		if st.Phase != "failed" || !strings.Contains(st.Error, "install") {
			t.Errorf("an install holding 256 MiB under a 64 MiB limit: %s (%q), want an install failure", st.Phase, st.Error)
		}
		n.destroy(t, "hfs-hog")
		hfsServes(t, n, "hfs-after-hog")
	})
}

// hfsInstallRecipe is a batch recipe with 64 MiB of memory, whose install
// runs install (after writing run.sh and extra, files or resources) and
// whose job runs job.
func hfsInstallRecipe(name, extra, install, job string) string {
	res := `memory = "64MiB"`
	if strings.HasPrefix(extra, "memory") {
		res, extra = extra, ""
	}
	return fmt.Sprintf(`
name = %q
version = "1"
[resources]
%s
disk = "8MiB"
[install]
timeout = "60s"
commands = ['''%s''']
[[files]]
path = "run.sh"
content = "echo honest"
%s
[types.default]
batch = true
timeout = "60s"
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", '''%s''']
`, name, res, install, extra, job)
}

// hfsResult fetches st's result with weft job result. The swapper may have
// been killed while out/sub was its link to the data dir: the result then
// holds that link, which weft job result refuses to write ("points
// outside the tree"); the files written before it are returned then.
func hfsResult(t *testing.T, n *hsbNode, st hsbInstance) map[string][]byte {
	t.Helper()
	if st.Phase != "completed" || st.ResultCID == "" {
		t.Fatalf("%s: %s (%q), want completed with a result", st.ID, st.Phase, st.Error)
	}
	out := filepath.Join(filepath.Dir(n.dir), "result-"+st.ID)
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.weft("job", "result", st.ResultCID, "--out", out); err != nil && !strings.Contains(err.Error(), "points outside the tree") {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err := filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		b, err := os.ReadFile(p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// hfsSecrets reads the node's files: the data dir's regular files.
func hfsSecrets(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && len(b) >= 8 {
				out[filepath.Join(dir, e.Name())] = b
			}
		}
	}
	for _, name := range []string{"identity.key", "api.token"} {
		if _, ok := out[filepath.Join(dir, name)]; !ok {
			t.Fatalf("no %s in the data dir %s", name, dir)
		}
	}
	return out
}

// hfsAlive reports whether pid runs (not a zombie), waiting a little for
// a kill in progress to finish.
func hfsAlive(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hfsServes runs one more small job to its result: the node still serves.
func hfsServes(t *testing.T, n *hsbNode, id string) {
	t.Helper()
	want := fmt.Sprintf("still serving %d", rand.Int64())
	st := n.run(t, id, hsbBatch(id, "", "echo '"+want+"' > $WEFT_OUT/ok"))
	if got := strings.TrimSpace(string(n.result(t, st)["ok"])); got != want {
		t.Fatalf("after the attack, a job's result: %q, want %q", got, want)
	}
	n.destroy(t, id)
}
