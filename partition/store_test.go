package partition

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func sampleState() *stateFile {
	return &stateFile{Version: stateVersion, Instances: []record{{
		ID: "i1", Name: "web", RecipeCID: "bafy", Type: "default", State: StateStarted, Epoch: 3,
		Params: map[string]any{"n": int64(100000), "msg": "hi", "f": 1.5, "b": true},
		Gen:    "g", Partition: 2, Phase: PhaseRunning, RunGen: "g",
		Procs: []procRecord{{Name: "httpd", PID: 123, Start: 456}}, Ports: map[string]int{"http": 20020},
		StartedNs: time.Unix(1700000000, 0).UnixNano(),
	}}}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.cbor")
	st := sampleState()
	if err := saveState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, st)
	}
	empty, err := loadState(filepath.Join(t.TempDir(), "missing"))
	if err != nil || len(empty.Instances) != 0 {
		t.Errorf("missing file: %v %v", empty, err)
	}
}

func TestStateRejectsBadFiles(t *testing.T) {
	bad := []*stateFile{
		{Instances: []record{{ID: "", State: StateStarted}}},
		{Instances: []record{{ID: "a", State: StateStarted}, {ID: "a", State: StateStarted}}},
		{Instances: []record{{ID: "a", State: "running"}}},
		{Instances: []record{{ID: "a", State: StateStarted, Partition: -7}}},
		{Instances: []record{{ID: "a", State: StateStarted, Procs: []procRecord{{PID: -1}}}}},
	}
	for i, st := range bad {
		b, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeState(b); !errors.Is(err, ErrState) {
			t.Errorf("case %d: err = %v, want ErrState", i, err)
		}
	}
	if _, err := decodeState([]byte{0xff, 0x00}); !errors.Is(err, ErrState) {
		t.Errorf("garbage: err = %v", err)
	}
}

func FuzzDecodeState(f *testing.F) {
	good, _ := encodeState(sampleState())
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0xa2, 0x61, 0x76, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("error not ErrState: %v", err)
			}
			return
		}
		// A decoded state re-encodes and decodes to the same thing.
		b2, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := decodeState(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(st2.Instances) != len(st.Instances) {
			t.Fatalf("instances %d vs %d", len(st2.Instances), len(st.Instances))
		}
	})
}
