// Package safefs walks, reads, changes the owner of, measures and deletes
// directory trees that someone else controls, without ever leaving them.
//
// The node runs as root and reads or changes files in trees that tenants
// own (a partition's out/, a software tree during its install). A path
// string is checked and then used; a tenant swaps a directory for a
// symbolic link in between and root follows it out of the tree. Here
// every step is taken from an open directory descriptor, one name at a
// time, with O_NOFOLLOW: a directory is opened with
// openat(parent, name, O_DIRECTORY|O_NOFOLLOW), read from its descriptor,
// and what is in it is stat-ed, opened, chowned or unlinked relative to
// that descriptor. A swap can at worst make the walk see the new entry (a
// symbolic link, reported as one, never followed) or fail; it cannot make
// it reach anything outside the tree, whatever the tenant does meanwhile.
// Paths of several components (OpenBeneath) are resolved by openat2 with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the kernel has it, component
// by component otherwise.
//
// Hard links are the one way in that no descriptor stops: a file of the
// tree can be another name of a file elsewhere (when the kernel lets the
// tenant make it: fs.protected_hardlinks). ChownTree therefore never
// changes a non-directory with more than one link unless told whose such
// files may be changed.
//
// It lives under recipes because recipes/store, which imports nothing
// outside recipes, stores directory trees (batch results) with it; the
// partition runtime uses it for every walk it does as root.
//
// Usage:
//
//	err := safefs.Walk(dir, func(e *safefs.Entry) error {
//		if e.IsRegular() {
//			f, err := e.Open() // the very file the walk saw
//			...
//		}
//		return nil
//	})
//	err = safefs.ChownTree(dir, safefs.Owner{UID: uid, GID: gid, LinkedFrom: -1})
//	n := safefs.DiskUsage(dir)
//	err = safefs.RemoveAll(dir)
//
// The last component of a path given to these functions is never
// followed if it is a symbolic link; the components above it must not be
// changeable by the tree's owner (the node's own directories).
//
// Concurrency: the functions are safe for concurrent use; a Dir is not.
package safefs
