package test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// retired lists the directories whose nodes the tests stopped: TestMain
// retires their nodes once more when every test is over, when nothing of
// theirs can be running any more (a user whose process was still exiting
// could not be deleted at the test's own cleanup).
var retired dirSet

type dirSet struct {
	mu   sync.Mutex
	dirs []string
}

func (s *dirSet) add(dir string) {
	s.mu.Lock()
	s.dirs = append(s.dirs, dir)
	s.mu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	retired.mu.Lock()
	for _, d := range retired.dirs {
		retireNode(d)
		retireNode(filepath.Join(d, "data"))
	}
	retired.mu.Unlock()
	os.Exit(code)
}
