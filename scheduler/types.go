package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Resources are what one instance needs, or what a node has free.
type Resources struct {
	// CPUMillis is CPU in thousandths of a core (1000 = one core).
	CPUMillis int64 `cbor:"1,keyasint,omitempty" json:"cpu_millis"`
	// MemoryBytes is memory in bytes.
	MemoryBytes int64 `cbor:"2,keyasint,omitempty" json:"memory_bytes"`
	// DiskBytes is disk in bytes.
	DiskBytes int64 `cbor:"3,keyasint,omitempty" json:"disk_bytes"`
}

// Fits reports whether r fits within free.
func (r Resources) Fits(free Resources) bool {
	return r.CPUMillis <= free.CPUMillis && r.MemoryBytes <= free.MemoryBytes && r.DiskBytes <= free.DiskBytes
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.CPUMillis - o.CPUMillis, r.MemoryBytes - o.MemoryBytes, r.DiskBytes - o.DiskBytes}
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.CPUMillis + o.CPUMillis, r.MemoryBytes + o.MemoryBytes, r.DiskBytes + o.DiskBytes}
}

func (r Resources) valid() bool { return r.CPUMillis >= 0 && r.MemoryBytes >= 0 && r.DiskBytes >= 0 }

// State is the state a requester asks an instance to be in, and the state
// an instance is observed in.
type State uint8

// States. The zero value is invalid on the wire.
const (
	// StatePending: not placed yet (observed only).
	StatePending State = iota
	// StateStarted: running (requested or observed).
	StateStarted
	// StateStopped: placed, processes stopped, partition kept.
	StateStopped
	// StateDestroyed: gone, partition freed.
	StateDestroyed
	// StateFailed: placement or run failed (observed only; see Reason).
	StateFailed
	// StateWaiting: nothing fits yet; waiting for capacity (observed only).
	StateWaiting
	// StateDone: a batch job finished (observed only; see Result).
	StateDone
)

var stateNames = [...]string{"pending", "started", "stopped", "destroyed", "failed", "waiting", "done"}

// String returns the state's name, as used in JSON and on the command line.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText encodes the state by name (JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseState parses a state name; "" means started.
func ParseState(s string) (State, error) {
	if s == "" {
		return StateStarted, nil
	}
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown state %q (want started, stopped or destroyed)", ErrInvalidRequest, s)
}

// requestable reports whether a requester may ask for s.
func (s State) requestable() bool {
	return s == StateStarted || s == StateStopped || s == StateDestroyed
}

// Amount is a quantity of credit in micro-credits (1e-6 credit), the
// market's unit in its signed messages (CBOR). In JSON it is an integer
// number of pico-credits (1e-12 credit), the unit of every money figure
// weft shows machines (see MarshalJSON); for people, String.
type Amount int64

// PicoPerMicro is the number of pico-credits (JSON) in one micro-credit.
const PicoPerMicro = 1_000_000

// String formats the amount in credits with six decimals.
func (a Amount) String() string {
	neg := a < 0
	u := uint64(a)
	if neg {
		u = -u // also right for the most negative value
	}
	s := fmt.Sprintf("%d.%06d", u/1e6, u%1e6)
	if neg {
		return "-" + s
	}
	return s
}

// MarshalJSON writes the amount as an integer number of pico-credits
// (exact: the micro-credits followed by six zeros).
func (a Amount) MarshalJSON() ([]byte, error) {
	b := strconv.AppendInt(nil, int64(a), 10)
	if a != 0 {
		b = append(b, "000000"...)
	}
	return b, nil
}

// UnmarshalJSON reads an integer number of pico-credits that is a whole
// number of micro-credits (what MarshalJSON writes).
func (a *Amount) UnmarshalJSON(b []byte) error {
	v, err := PicoToMicro(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// PicoToMicro parses an integer number of pico-credits (JSON's money unit)
// into an Amount; it must be a whole number of micro-credits.
func PicoToMicro(s string) (Amount, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("%w: amount %s: want an integer number of pico-credits", ErrMalformed, s)
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, nil
	}
	if len(digits) <= 6 || digits[len(digits)-6:] != "000000" {
		return 0, fmt.Errorf("%w: amount %s pico-credits is not a whole number of micro-credits", ErrMalformed, s)
	}
	if neg {
		digits = "-" + digits
	}
	v, err := strconv.ParseInt(digits[:len(digits)-6], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: amount %s pico-credits: %v", ErrMalformed, s, err)
	}
	return Amount(v), nil
}

// PriceList is a node's price per resource unit and hour, in micro-credits
// (in JSON, like every Amount, in pico-credits).
type PriceList struct {
	// PerCoreHour is the price of 1000 CPU millis for one hour.
	PerCoreHour Amount `cbor:"1,keyasint,omitempty" json:"per_core_hour" toml:"per_core_hour"`
	// PerGiBHour is the price of 1 GiB of memory for one hour.
	PerGiBHour Amount `cbor:"2,keyasint,omitempty" json:"per_gib_hour" toml:"per_gib_hour"`
	// PerDiskGiBHour is the price of 1 GiB of disk for one hour.
	PerDiskGiBHour Amount `cbor:"3,keyasint,omitempty" json:"per_disk_gib_hour" toml:"per_disk_gib_hour"`
	// PerInstanceHour is a flat price per instance and hour.
	PerInstanceHour Amount `cbor:"4,keyasint,omitempty" json:"per_instance_hour" toml:"per_instance_hour"`
}

// Cost is the price of r for one hour under p, rounded up to a micro-credit.
// It saturates instead of overflowing.
func (p PriceList) Cost(r Resources) Amount {
	const gib = 1 << 30
	total := uint64(0)
	add := func(price Amount, qty int64, unit uint64) {
		if price <= 0 || qty <= 0 {
			return
		}
		hi, lo := bits.Mul64(uint64(price), uint64(qty))
		if hi >= unit {
			total = 1 << 62
			return
		}
		q, rem := bits.Div64(hi, lo, unit)
		if rem != 0 {
			q++
		}
		total += min(q, 1<<62) // total <= 1<<62 too: the sum cannot wrap
		if total > 1<<62 {
			total = 1 << 62
		}
	}
	add(p.PerCoreHour, r.CPUMillis, 1000)
	add(p.PerGiBHour, r.MemoryBytes, gib)
	add(p.PerDiskGiBHour, r.DiskBytes, gib)
	if p.PerInstanceHour > 0 {
		total += uint64(p.PerInstanceHour)
	}
	if total > 1<<62 {
		total = 1 << 62
	}
	return Amount(total)
}

func (p PriceList) valid() bool {
	return p.PerCoreHour >= 0 && p.PerGiBHour >= 0 && p.PerDiskGiBHour >= 0 && p.PerInstanceHour >= 0
}

// InstanceID identifies an instance: hex(sha256(domain, requester, name)).
// It is the same on every node, so requests are idempotent by (requester, name).
type InstanceID string

// NewInstanceID derives the instance ID of (requester, name).
func NewInstanceID(requester peer.ID, name string) InstanceID {
	h := sha256.New()
	h.Write([]byte("weft/market/instance/v1\x00"))
	h.Write([]byte(requester))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return InstanceID(hex.EncodeToString(h.Sum(nil)))
}

// Bytes returns the 32 raw bytes of the ID (nil if it is not valid hex).
func (id InstanceID) Bytes() []byte {
	b, err := hex.DecodeString(string(id))
	if err != nil || len(b) != 32 {
		return nil
	}
	return b
}

// Short returns the first 12 hex digits, for logs.
func (id InstanceID) Short() string {
	if len(id) > 12 {
		return string(id[:12])
	}
	return string(id)
}

// MaxNameLen bounds instance names.
const MaxNameLen = 128

// ValidateName checks an instance name: 1..128 of [A-Za-z0-9._-].
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: name must be 1..%d characters", ErrInvalidRequest, MaxNameLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c)) {
			return fmt.Errorf("%w: name %q: only letters, digits, '.', '_' and '-'", ErrInvalidRequest, name)
		}
	}
	return nil
}

// Delegation lets guardians re-place an instance while its requester is
// offline. It is part of the signed request: the requester picks the
// guardians (rendezvous hashing of the instance ID over the live members,
// see Guardians) and signs the list, so any node can check an award made by
// a guardian without a shared view of the membership.
type Delegation struct {
	// Guardians may re-place the instance, first live one first (empty:
	// nobody but the requester).
	Guardians []peer.ID `cbor:"1,keyasint,omitempty" json:"guardians,omitempty"`
	// Expires is when the delegation ends (Unix nanoseconds; 0 = never).
	Expires int64 `cbor:"2,keyasint,omitempty" json:"expires,omitempty"`
}

// Allows reports whether the delegation lets id act at now.
func (d Delegation) Allows(id peer.ID, now time.Time) bool {
	return (d.Expires == 0 || now.UnixNano() < d.Expires) && slices.Contains(d.Guardians, id)
}
