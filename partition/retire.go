package partition

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
)

// RetireNode removes from this host what a root node on dataDir made
// outside its data dir, once that node is gone for good (killed and never
// to start there again): its partitions' mounted disk images, its cgroups
// (their processes killed first), its nftables table and its Unix users
// (partitions users PREFIX0…PREFIX<partitions-1> and the install user, with
// their processes). A node that starts on dataDir again needs none of
// this: it adopts or removes what it finds. Without root it does nothing.
// Call it after the node's process has exited.
func RetireNode(dataDir string, partitions int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	var errs []error
	// Users first: killing their processes frees the mounts and cgroups.
	DeleteNodeUsers(abs, partitions)
	lay, err := resolveLayout(abs, "", true)
	if err == nil {
		errs = append(errs, UnmountBelow(lay.base))
	}
	if abs != lay.base {
		errs = append(errs, UnmountBelow(abs))
	}
	cg := detectCgroups("weft-"+nodeTag(abs), true)
	cg.sweep(func(string) bool { return false })
	cg.cleanup()
	if nft, err := exec.LookPath("nft"); err == nil {
		// Absent when the node never metered or closed cleanly.
		_ = exec.Command(nft, "delete", "table", "inet", NetTable(abs)).Run()
	}
	return errors.Join(errs...)
}
