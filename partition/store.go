package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fxamacker/cbor/v2"

	"github.com/weftgrid/weft/recipes/atomicfile"
	"github.com/weftgrid/weft/recipes/wire"
)

// MaxStateBytes bounds the state file read at start.
const MaxStateBytes = 64 << 20

// stateVersion is the state file's format version.
const stateVersion = 1

// procRecord identifies a process started by some run of the node: the pid
// alone could be reused, so the kernel's start time (clock ticks since boot,
// /proc/PID/stat field 22) is recorded with it.
type procRecord struct {
	Name  string `cbor:"name"`
	PID   int    `cbor:"pid"`
	Start uint64 `cbor:"start"`
}

// record is one instance in the state file: the desired state (spec) and
// the facts needed to find what actually runs after a restart.
type record struct {
	ID        string         `cbor:"id"`
	Name      string         `cbor:"name,omitempty"`
	RecipeCID string         `cbor:"recipe_cid"`
	Recipe    []byte         `cbor:"recipe,omitempty"` // canonical encoding
	Type      string         `cbor:"type,omitempty"`
	Params    map[string]any `cbor:"params,omitempty"`
	State     State          `cbor:"state"`
	Epoch     uint64         `cbor:"epoch"`
	Requester string         `cbor:"requester,omitempty"`
	Gen       string         `cbor:"gen"`
	// Actual facts.
	Partition int            `cbor:"partition"`
	Phase     Phase          `cbor:"phase"`
	RunGen    string         `cbor:"run_gen,omitempty"`
	Procs     []procRecord   `cbor:"procs,omitempty"`
	Ports     map[string]int `cbor:"ports,omitempty"`
	ResultCID string         `cbor:"result_cid,omitempty"`
	Error     string         `cbor:"error,omitempty"`
	StartedNs int64          `cbor:"started_ns,omitempty"` // unix nanoseconds
}

// stateFile is DataDir/partitions/state.cbor.
type stateFile struct {
	Version   int      `cbor:"v"`
	Instances []record `cbor:"instances"`
}

var (
	stateEnc = wire.Enc
	stateDec = func() cbor.DecMode {
		o := wire.DecOptions(wire.Limits{Nesting: 24, Elements: 1 << 16, MapPairs: 1 << 16})
		o.IntDec = cbor.IntDecConvertSignedOrFail
		// Fields of a newer version are ignored: the state file outlives
		// downgrades.
		o.ExtraReturnErrors = cbor.ExtraDecErrorNone
		return wire.MustDecMode(o)
	}()
)

// decodeState parses and checks a state file.
func decodeState(b []byte) (*stateFile, error) {
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrState, len(b), MaxStateBytes)
	}
	var st stateFile
	if err := stateDec.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d (this weft reads %d)", ErrState, st.Version, stateVersion)
	}
	ids := map[string]bool{}
	for i, r := range st.Instances {
		switch {
		case r.ID == "" || len(r.ID) > 256:
			return nil, fmt.Errorf("%w: instance %d: bad id", ErrState, i)
		case ids[r.ID]:
			return nil, fmt.Errorf("%w: instance %q twice", ErrState, r.ID)
		case !r.State.Valid():
			return nil, fmt.Errorf("%w: instance %q: bad state %q", ErrState, r.ID, r.State)
		case r.Partition < -1 || r.Partition >= 4096:
			return nil, fmt.Errorf("%w: instance %q: bad partition %d", ErrState, r.ID, r.Partition)
		}
		for _, p := range r.Procs {
			if p.PID <= 0 {
				return nil, fmt.Errorf("%w: instance %q: bad pid %d", ErrState, r.ID, p.PID)
			}
		}
		ids[r.ID] = true
	}
	return &st, nil
}

func encodeState(st *stateFile) ([]byte, error) {
	st.Version = stateVersion
	return stateEnc.Marshal(st)
}

// loadState reads path; a missing file is an empty state.
func loadState(path string) (*stateFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &stateFile{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxStateBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes (max %d)", ErrState, path, fi.Size(), MaxStateBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}

// saveState writes st to path atomically and durably: a crash leaves either
// the old or the new file, never a mix.
func saveState(path string, st *stateFile) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	return writeStateBytes(path, b)
}

// writeStateBytes writes an encoded state file atomically and durably.
func writeStateBytes(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b); err != nil {
		return err
	}
	_ = atomicfile.SyncDir(filepath.Dir(path))
	return nil
}
