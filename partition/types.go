package partition

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weftgrid/weft/partition/metering"
	"github.com/weftgrid/weft/recipes"
)

// Errors returned by this package.
var (
	// ErrInvalidSpec means an InstanceSpec is incomplete or inconsistent.
	ErrInvalidSpec = errors.New("partition: invalid instance spec")
	// ErrNoFreePartition means every partition of the node is taken.
	ErrNoFreePartition = errors.New("partition: no free partition")
	// ErrStaleEpoch means a spec carries an older epoch than the one applied.
	ErrStaleEpoch = errors.New("partition: stale epoch")
	// ErrUnknownInstance means no instance has that ID.
	ErrUnknownInstance = errors.New("partition: unknown instance")
	// ErrClosed means the Manager is closed.
	ErrClosed = errors.New("partition: manager closed")
	// ErrState means the persisted state file is unreadable or invalid.
	ErrState = errors.New("partition: bad state file")
	// ErrInstall means a recipe's install section failed.
	ErrInstall = errors.New("partition: install failed")
	// ErrNoResultStore is returned by a ResultStore that has nowhere to
	// keep results; the batch result is then only its directory.
	ErrNoResultStore = errors.New("partition: no result store")
	// ErrNoFetcher means a file is referenced by CID but no Fetcher is configured.
	ErrNoFetcher = errors.New("partition: no fetcher for artifacts by CID")
)

// State is the requested state of an instance (SlapOS's requested state).
type State string

// Requested states.
const (
	StateStarted   State = "started"
	StateStopped   State = "stopped"
	StateDestroyed State = "destroyed"
)

// String returns the state's name.
func (s State) String() string { return string(s) }

// Valid reports whether s is one of the three requested states.
func (s State) Valid() bool {
	return s == StateStarted || s == StateStopped || s == StateDestroyed
}

// Phase is where an instance is in its life on this node.
type Phase string

// Phases.
const (
	// PhasePending: accepted, waiting for a partition or for the loop.
	PhasePending Phase = "pending"
	// PhaseInstalling: the recipe's install section is running.
	PhaseInstalling Phase = "installing"
	// PhaseStarting: processes started, test promises not yet passing.
	PhaseStarting Phase = "starting"
	// PhaseRunning: processes up and test promises passed (or a batch running).
	PhaseRunning Phase = "running"
	// PhaseFailed: the instance cannot run (install, render, batch failure).
	PhaseFailed Phase = "failed"
	// PhaseCompleted: a batch instance finished; its output is the result.
	PhaseCompleted Phase = "completed"
	// PhaseStopped: no process runs; the partition and its files are kept.
	PhaseStopped Phase = "stopped"
	// PhaseDestroying: processes being stopped and the partition wiped.
	PhaseDestroying Phase = "destroying"
	// PhaseDestroyed: gone; reported once to subscribers, then forgotten.
	PhaseDestroyed Phase = "destroyed"
)

// String returns the phase's name.
func (p Phase) String() string { return string(p) }

// InstanceSpec is the desired state of one instance on this node.
type InstanceSpec struct {
	// ID identifies the instance; Apply is idempotent by ID.
	ID string
	// Name is the requester's name for the instance (display only).
	Name string
	// RecipeCID is the recipe's CID; the software dir is keyed by it.
	// Filled from Recipe when empty.
	RecipeCID string
	// Recipe is the parsed recipe. Required unless State is destroyed or
	// the instance is already known.
	Recipe *recipes.Recipe
	// Type is the software type ("" = the recipe's default).
	Type string
	// Params are validated, typed parameters (recipes.ValidateParams).
	Params map[string]any
	// State is the requested state.
	State State
	// Epoch fences re-placements: a spec with a lower epoch than the one
	// applied is refused with ErrStaleEpoch.
	Epoch uint64
	// Requester is the requester's peer ID (display and billing).
	Requester string
}

// PromiseStatus is the last result of one promise.
type PromiseStatus struct {
	// Name of the promise in the recipe.
	Name string `json:"name"`
	// Kind is tcp, http or command.
	Kind string `json:"kind"`
	// OK is the last check's result.
	OK bool `json:"ok"`
	// LastError is the last failure's message ("" after a success).
	LastError string `json:"last_error,omitempty"`
	// CheckedAt is when the last check finished (zero: never checked).
	CheckedAt time.Time `json:"checked_at"`
}

// ProcessStatus is one supervised process.
type ProcessStatus struct {
	// Name of the process in the recipe.
	Name string `json:"name"`
	// PID is the current OS process ID (0 when not running).
	PID int `json:"pid"`
	// Running reports whether the process is alive.
	Running bool `json:"running"`
	// Restarts counts restarts since the instance started.
	Restarts int `json:"restarts"`
	// LastExit describes the last exit ("exit status 1", "signal: killed").
	LastExit string `json:"last_exit,omitempty"`
	// Log is the process's log file (stdout and stderr).
	Log string `json:"log"`
	// Adopted is true when the process was started by an earlier node run.
	Adopted bool `json:"adopted,omitempty"`
}

// InstanceStatus is what the node knows about one instance.
type InstanceStatus struct {
	ID        string `json:"instance_id"`
	Name      string `json:"name,omitempty"`
	RecipeCID string `json:"recipe_cid"`
	Type      string `json:"type"`
	Requester string `json:"requester,omitempty"`
	Epoch     uint64 `json:"epoch"`
	// State is the requested state.
	State State `json:"state"`
	// Phase is the actual phase.
	Phase Phase `json:"phase"`
	// Healthy is false when an anomaly promise fails.
	Healthy bool `json:"healthy"`
	// Batch is true for run-to-completion instances.
	Batch bool `json:"batch,omitempty"`
	// Partition is the partition index, -1 when none is allocated.
	Partition int `json:"partition"`
	// Ports maps the software type's port names to allocated ports.
	Ports map[string]int `json:"ports,omitempty"`
	// Connection are the rendered connection parameters.
	Connection map[string]string `json:"connection,omitempty"`
	// Promises are the promises' last results.
	Promises []PromiseStatus `json:"promises"`
	// Processes are the supervised processes.
	Processes []ProcessStatus `json:"processes"`
	// ResultDir is a completed batch instance's output directory.
	ResultDir string `json:"result_dir,omitempty"`
	// ResultCID is the CID of ResultDir once stored (see Config.Results).
	ResultCID string `json:"result_cid,omitempty"`
	// Error says why the instance failed or waits.
	Error string `json:"error,omitempty"`
	// Stale is true while a started instance still runs an earlier recipe,
	// type or parameters than the last applied spec (an in-place update
	// being rolled out): Phase and Connection then describe the old run.
	Stale bool `json:"stale,omitempty"`
	// StartedAt is when the processes were (last) started.
	StartedAt time.Time `json:"started_at,omitzero"`
	// ReadyAt is when the test promises (last) passed.
	ReadyAt time.Time `json:"ready_at,omitzero"`
	// UpdatedAt is when the status last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// PartitionStatus is one partition slot (the /v1/partitions entries).
type PartitionStatus struct {
	Index int    `json:"index"`
	User  string `json:"user,omitempty"`
	Dir   string `json:"dir"`
	// Ports is the partition's inclusive port range [lo, hi].
	Ports      [2]int          `json:"ports"`
	InstanceID string          `json:"instance_id,omitempty"`
	State      string          `json:"state"`
	Phase      string          `json:"phase,omitempty"`
	Promises   []PromiseStatus `json:"promises"`
	// Usage is the instance's usage over the last minute.
	Usage          PartitionUsage `json:"usage"`
	LimitsEnforced bool           `json:"limits_enforced"`
	// Sandbox is what confines the processes of the partition's current
	// run (nil when nothing runs in it).
	Sandbox *SandboxStatus `json:"sandbox,omitempty"`
}

// PartitionUsage is the usage summary shown per partition.
type PartitionUsage struct {
	CPUMs        int64 `json:"cpu_ms"`
	MemAvgBytes  int64 `json:"mem_avg_bytes"`
	MemPeakBytes int64 `json:"mem_peak_bytes"`
	DiskBytes    int64 `json:"disk_bytes"`
	// NetBytes is the bytes the partition's processes sent plus those
	// they received (-1 when not metered: see Limits.NetMetered and
	// Limits.NetReceived).
	NetBytes int64 `json:"net_bytes"`
}

// Limits says what the host lets the node enforce on partitions.
type Limits struct {
	// Enforced is true when CPU and memory limits are both enforced.
	Enforced bool `json:"enforced"`
	// Cgroup is "v2", "v1" or "none".
	Cgroup string `json:"cgroup"`
	// CPU, Memory and Pids report which cgroup limits apply.
	CPU    bool `json:"cpu"`
	Memory bool `json:"memory"`
	Pids   bool `json:"pids"`
	// Rlimits reports whether rlimits (open files, core, file size) apply.
	Rlimits bool `json:"rlimits"`
	// Users reports whether partitions run under their own Unix users.
	Users bool `json:"users"`
	// NetMetered is true when the bytes each partition's processes send
	// are counted (root, nft, one Unix user per partition; see netmeter.go).
	NetMetered bool `json:"net_metered"`
	// NetReceived is true when the bytes they receive are counted too
	// (connection tracking; see netmeter.go for what is not counted).
	NetReceived bool `json:"net_received"`
	// Reasons explain each thing not enforced.
	Reasons []string `json:"reasons,omitempty"`
	// Summary is one line for people: "limits enforced: ..." or
	// "limits not enforced: <why>".
	Summary string `json:"summary"`
}

// Fetcher gets artifacts (files referenced by CID) from the content store
// or the grid, verified, into dest. The daemon implements it with the
// recipe store.
type Fetcher interface {
	FetchFile(ctx context.Context, cid string, dest string) error
}

// ResultStore stores a completed batch instance's output directory and
// returns its CID. The daemon implements it with the recipe store's PutDir.
type ResultStore interface {
	PutDir(ctx context.Context, dir string) (string, error)
}

// Usage is one billing slice of an instance's usage; see package metering.
type Usage = metering.Usage

// SandboxStatus says which protections confine the processes weft starts
// for recipes (instances, command and network promises). At node level
// (Manager.Sandbox) each is true only when a probe at start saw it take
// effect and every partition's sandbox is built the same way (a partition
// whose sandbox cannot be built does not run); per partition it is what
// that partition's current run has.
type SandboxStatus struct {
	// LandlockABI is the kernel's Landlock ABI in use, 0 when unavailable.
	LandlockABI int `json:"landlock_abi"`
	// FS: Landlock confines files: read-write only the partition's
	// directory, read-only the recipe's software, the weft binary and
	// system directories; nothing of the node's data dir or other
	// partitions.
	FS bool `json:"fs"`
	// BindPorts: TCP bind only inside the partition's port range
	// (Landlock ABI ≥ 4). Connecting stays allowed.
	BindPorts bool `json:"bind_ports"`
	// ScopedSignals: no signal to, and no abstract Unix socket of, a
	// process outside the partition's domain (Landlock ABI ≥ 6).
	ScopedSignals bool `json:"scoped_signals"`
	// PrivateTmp: a private mount namespace with the partition's own
	// /tmp and /dev/shm (root only).
	PrivateTmp bool `json:"private_tmp"`
	// PrivateIPC: a private IPC namespace (SysV and POSIX IPC objects go
	// with the partition's processes; root only).
	PrivateIPC bool `json:"private_ipc"`
	// DiskQuota: the disk resource is a hard limit on the partition's
	// tree (as root: a loop-mounted ext4 image of that size per partition,
	// see diskimg.go). False: see DiskMetered.
	DiskQuota bool `json:"disk_quota"`
	// DiskMetered: the partition's tree is measured and an instance over
	// its disk resource fails with "disk quota exceeded" (files are also
	// capped at that size by RLIMIT_FSIZE).
	DiskMetered bool `json:"disk_metered"`
	// Rlimits: open files, core size and file size are set inside each
	// process before it runs the recipe's command.
	Rlimits bool `json:"rlimits"`
	// Promises: promises run in the partition's sandbox as its user
	// (command promises as its processes; network checks dial from it).
	Promises bool `json:"promises"`
	// Reasons explain each protection not in force.
	Reasons []string `json:"reasons,omitempty"`
}

// Short says in a few words what s enforces: "landlock7(fs,ports,signals)
// tmp ipc rlimits disk:metered", or "none".
func (s SandboxStatus) Short() string {
	var out []string
	if s.FS {
		ll := []string{"fs"}
		if s.BindPorts {
			ll = append(ll, "ports")
		}
		if s.ScopedSignals {
			ll = append(ll, "signals")
		}
		out = append(out, fmt.Sprintf("landlock%d(%s)", s.LandlockABI, strings.Join(ll, ",")))
	}
	if s.PrivateTmp {
		out = append(out, "tmp")
	}
	if s.PrivateIPC {
		out = append(out, "ipc")
	}
	if s.Rlimits {
		out = append(out, "rlimits")
	}
	switch {
	case s.DiskQuota:
		out = append(out, "disk:quota")
	case s.DiskMetered:
		out = append(out, "disk:metered")
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}
