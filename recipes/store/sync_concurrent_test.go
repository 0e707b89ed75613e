package store

import (
	"testing"
	"testing/synctest"
)

// Put, PutRecipe, a transfer... call Sync and then take their blocks for
// durable. When another Sync already took those blocks and is still
// fsyncing them, a second Sync must not return before that is done.
func TestSyncWaitsForBlocksAnotherSyncIsWriting(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c, err := s.PutRaw([]byte("written before both Syncs"))
		if err != nil {
			t.Fatal(err)
		}
		entered, release := make(chan struct{}), make(chan struct{})
		synced := false
		old := syncFile
		syncFile = func(p string) error {
			if p == s.path(c) {
				close(entered)
				<-release
				synced = true
			}
			return old(p)
		}
		defer func() { syncFile = old }()
		first := make(chan error, 1)
		go func() { first <- s.Sync() }()
		<-entered // the first Sync is writing c out
		second := make(chan bool, 1)
		go func() {
			_ = s.Sync()
			second <- synced
		}()
		synctest.Wait()
		close(release)
		if !<-second {
			t.Fatal("Sync returned before the block written before it was synced")
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
}
