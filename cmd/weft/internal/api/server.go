// Package api is the node's local HTTP API: a loopback server guarded by a
// token kept in the data directory, and the client the CLI uses to reach it.
//
// The node writes DataDir/api.json ({"addr", "token"}, mode 0600) when it
// starts listening; NewClientFromDataDir reads it. Requests authenticate with
// "Authorization: Bearer TOKEN", or, for reads (GET, HEAD) only, with the
// weft_token cookie that the browser dashboard gets by exchanging a one-time
// login code: POST /v1/login-code (with the token) returns a code valid for
// LoginCodeTTL and usable once; GET or POST /login?code=CODE sets the
// cookie. The token itself never appears in a URL.
//
// Concurrency: a Server is safe for concurrent use once Serve is called;
// handlers must be registered before.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/weftgrid/weft/recipes/atomicfile"
)

// MaxBodyBytes bounds every request body the API accepts.
const MaxBodyBytes = 8 << 20

// TokenCookie is the cookie that carries the token for browsers.
const TokenCookie = "weft_token"

// Endpoint is what DataDir/api.json holds.
type Endpoint struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// Server is the local API server.
type Server struct {
	mux    *http.ServeMux
	token  string
	log    *slog.Logger
	server *http.Server
	// stop cancels the context of every request (event streams never end
	// on their own), so that Close can wait for handlers to return.
	stop context.CancelFunc

	codesMu sync.Mutex
	codes   map[string]time.Time // one-time login codes → expiry
}

// LoginCodeTTL is how long a login code from POST /v1/login-code is valid.
const LoginCodeTTL = time.Minute

// maxLoginCodes bounds the codes waiting to be used.
const maxLoginCodes = 64

// LoginCode is the answer of POST /v1/login-code.
type LoginCode struct {
	// Code is exchanged once, before ExpiresAt, for the login cookie:
	// GET or POST /login?code=CODE.
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NewLoginCode returns a fresh one-time login code.
func (s *Server) NewLoginCode() (LoginCode, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return LoginCode{}, err
	}
	now := time.Now()
	c := LoginCode{Code: hex.EncodeToString(b), ExpiresAt: now.Add(LoginCodeTTL)}
	s.codesMu.Lock()
	defer s.codesMu.Unlock()
	for k, exp := range s.codes {
		if now.After(exp) || len(s.codes) >= maxLoginCodes {
			delete(s.codes, k)
		}
	}
	s.codes[c.Code] = c.ExpiresAt
	return c, nil
}

// useLoginCode consumes code: true when it was issued, unused and unexpired.
func (s *Server) useLoginCode(code string) bool {
	if code == "" {
		return false
	}
	s.codesMu.Lock()
	defer s.codesMu.Unlock()
	exp, ok := s.codes[code]
	delete(s.codes, code)
	return ok && time.Now().Before(exp)
}

func (s *Server) handleLoginCode(w http.ResponseWriter, r *http.Request) {
	if _, cookie := s.credential(r); cookie {
		WriteError(w, http.StatusForbidden, errors.New("api: a login code needs the token in an Authorization header"))
		return
	}
	c, err := s.NewLoginCode()
	if err != nil {
		WriteError(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

// NewServer returns a server that requires token on every non-public route.
func NewServer(token string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{mux: http.NewServeMux(), token: token, log: log, codes: map[string]time.Time{}}
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.HandleFunc("POST /login", s.login)
	s.HandleFunc("POST /v1/login-code", s.handleLoginCode)
	// The http.Server exists from the start so that Close racing with Serve
	// (a node stopped while it is starting) needs no lock: http.Server itself
	// makes Serve after Close return ErrServerClosed.
	base, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.server = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	return s
}

// Handle registers an authenticated handler. pattern uses net/http's syntax,
// e.g. "GET /v1/status".
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.auth(h))
}

// HandleFunc registers an authenticated handler function.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, http.HandlerFunc(h))
}

// HandlePublic registers a handler that needs no token (static assets only).
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// Authorized reports whether r carries the token: in the Authorization
// header for any method, or in the login cookie for reads (GET, HEAD) only.
// The browser sends the cookie with requests made by any page of the same
// site, and every port of the loopback address is the same site (an
// instance's web page included); the dashboard only reads, so the cookie
// must not let such a page change anything.
func (s *Server) Authorized(r *http.Request) bool {
	tok, cookie := s.credential(r)
	if cookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}

// credential returns the token r carries and whether it came from the
// login cookie.
func (s *Server) credential(r *http.Request) (tok string, cookie bool) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimPrefix(h, "Bearer "), false
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Authorized(r) {
			if _, cookie := s.credential(r); cookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
				WriteError(w, http.StatusForbidden, errors.New("api: the login cookie only allows reads; changes need the token in an Authorization header (the CLI sends it)"))
				return
			}
			WriteError(w, http.StatusUnauthorized, errors.New("api: missing or wrong token (the CLI reads it from the data dir; browsers log in through the URL 'weft ui' prints)"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("token") {
		http.Error(w, "the API token is not accepted in a URL: run 'weft ui' for a one-time login URL", http.StatusBadRequest)
		return
	}
	code := r.URL.Query().Get("code")
	if r.Method == http.MethodPost && code == "" {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		code = r.PostFormValue("code")
	}
	if !s.useLoginCode(code) {
		http.Error(w, "unknown, used or expired login code: run 'weft ui' for a fresh login URL", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ServeHTTP lets the server be used directly, e.g. with httptest.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve serves on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.server.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server: it stops accepting, cancels the requests in
// progress and waits (up to closeWait) for their handlers to return, so that
// what they use can be closed after it. It is safe to call more than once.
func (s *Server) Close() error {
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	if err := s.server.Shutdown(ctx); err != nil {
		return s.server.Close()
	}
	return nil
}

// closeWait bounds how long Close waits for handlers in progress.
const closeWait = 5 * time.Second

// LoadOrCreateToken returns the token in dataDir/api.token, creating it.
func LoadOrCreateToken(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "api.token")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(buf)
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("api: write token: %w", err)
	}
	return tok, nil
}

// WriteEndpoint records addr and token in dataDir/api.json for the CLI.
func WriteEndpoint(dataDir string, ep Endpoint) error {
	b, _ := json.Marshal(ep)
	return atomicfile.WriteFile(filepath.Join(dataDir, "api.json"), b)
}

// RemoveEndpoint deletes dataDir/api.json (on clean shutdown).
func RemoveEndpoint(dataDir string) { _ = os.Remove(filepath.Join(dataDir, "api.json")) }

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteError writes {"error": err} with status.
func WriteError(w http.ResponseWriter, status int, err error) {
	WriteJSON(w, status, ErrorBody{Error: err.Error()})
}

// DecodeJSON decodes the request body into v, rejecting unknown fields.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("api: bad request body: %w", err)
	}
	return nil
}
