package dashboard

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

//go:embed assets
var assetsFS embed.FS

// contentSecurityPolicy allows nothing but this origin: no inline script, no
// third-party asset, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
}

// Page serves the dashboard's HTML shell. It holds no data, so it is public:
// the page fetches everything from authenticated routes.
func Page() http.Handler {
	page, err := assetsFS.ReadFile("assets/index.html")
	if err != nil {
		panic("dashboard: embedded index.html missing: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(page))
	})
}

// Assets serves the embedded stylesheet, script and icon under /assets/.
func Assets() http.Handler {
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic("dashboard: embedded assets missing: " + err.Error())
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
}

// Session is the body of GET /v1/dashboard: it tells the page that its
// cookie works and what the event stream carries.
type Session struct {
	// OK is always true (an unauthenticated caller gets 401 instead).
	OK bool `json:"ok"`
	// Topics are the change topics the event stream sends.
	Topics []string `json:"topics"`
	// PollMillis is the server's change-detection interval in milliseconds.
	PollMillis int64 `json:"poll_ms"`
}

// Mux is the part of api.Server the dashboard registers on.
type Mux interface {
	// HandlePublic registers a route that needs no token.
	HandlePublic(pattern string, h http.Handler)
	// Handle registers a route that needs the token or the login cookie.
	Handle(pattern string, h http.Handler)
}

var _ Mux = (*api.Server)(nil)

// Register adds the dashboard's routes to m: the public page (GET / exactly,
// so unknown paths still answer 404) and assets, and the authenticated event
// stream GET /v1/events and session check GET /v1/dashboard.
func Register(m Mux, b *Broker) {
	m.HandlePublic("GET /{$}", Page())
	m.HandlePublic("GET /assets/", Assets())
	m.Handle("GET /v1/events", b)
	m.Handle("GET /v1/dashboard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		api.WriteJSON(w, http.StatusOK, Session{OK: true, Topics: Topics, PollMillis: b.cfg.PollInterval.Milliseconds()})
	}))
}
