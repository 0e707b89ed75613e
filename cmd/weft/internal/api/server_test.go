package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// loginCookie logs in with a fresh one-time code (GET /login?code=) and
// returns the cookie it sets.
func loginCookie(t *testing.T, s *Server) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login?code="+newCode(t, s), nil))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: status %d", w.Code)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == TokenCookie {
			return c
		}
	}
	t.Fatal("login set no cookie")
	return nil
}

// newCode asks for a login code as the CLI does (POST with the token).
func newCode(t *testing.T, s *Server) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/login-code", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var c LoginCode
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &c) != nil || len(c.Code) < 32 {
		t.Fatalf("POST /v1/login-code: %d %s", w.Code, w.Body)
	}
	return c.Code
}

// The browser logs in with a one-time code, never the token: the token in
// a URL is refused, a code works once, a code needs the token to get, and
// an unknown or expired one is refused. POST /login with the code in a form
// works too.
func TestLoginCodeIsOneTime(t *testing.T) {
	s := NewServer(testToken, nil)
	get := func(u string) int {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
		return w.Code
	}
	if c := get("/login?token=" + testToken); c != http.StatusBadRequest {
		t.Fatalf("login with the token in the URL: %d, want 400", c)
	}
	code := newCode(t, s)
	if c := get("/login?code=" + code); c != http.StatusSeeOther {
		t.Fatalf("first use of a code: %d", c)
	}
	if c := get("/login?code=" + code); c != http.StatusUnauthorized {
		t.Fatalf("second use of a code: %d, want 401", c)
	}
	if c := get("/login?code=0123"); c != http.StatusUnauthorized {
		t.Fatalf("made-up code: %d, want 401", c)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/login-code", nil))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("a code without the token: %d, want 401", w.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/login-code", nil)
	req.AddCookie(loginCookie(t, s))
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code/100 == 2 {
		t.Fatalf("a code with only the cookie: %d, want refused", w.Code)
	}
	expired := newCode(t, s)
	s.codesMu.Lock()
	s.codes[expired] = time.Now().Add(-time.Second)
	s.codesMu.Unlock()
	if c := get("/login?code=" + expired); c != http.StatusUnauthorized {
		t.Fatalf("expired code: %d, want 401", c)
	}
	form := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("code="+newCode(t, s)))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	s.ServeHTTP(w, form)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST /login with a code: %d", w.Code)
	}
}

// The login cookie is sent by the browser with requests from any page of
// the same site, and every port of 127.0.0.1 is the same site (SameSite
// ignores ports): an instance's web page at 127.0.0.1:20000 can make the
// browser POST to the API with the cookie (a "simple" text/plain request
// needs no CORS preflight). The dashboard only reads, so the cookie must
// not authorize state-changing methods; the CLI's bearer token still does.
func TestCookieDoesNotAuthorizeWrites(t *testing.T) {
	s := NewServer(testToken, nil)
	calls := 0
	for _, p := range []string{"POST /v1/local/instances", "DELETE /v1/local/instances/{id}", "GET /v1/status"} {
		s.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			calls++
			WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
		})
	}
	cookie := loginCookie(t, s)

	for _, m := range []struct{ method, path string }{
		{http.MethodPost, "/v1/local/instances"},
		{http.MethodDelete, "/v1/local/instances/x"},
	} {
		req := httptest.NewRequest(m.method, m.path, strings.NewReader(`{"toml":"..."}`))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", "http://127.0.0.1:20000")
		req.Header.Set("Sec-Fetch-Site", "same-site")
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code/100 == 2 || calls != 0 {
			t.Fatalf("%s %s with only the login cookie: status %d, handler ran %d times; want it refused", m.method, m.path, w.Code, calls)
		}
	}

	// The dashboard's reads still work with the cookie.
	req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
	req.AddCookie(cookie)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusOK || calls != 1 {
		t.Fatalf("GET with the cookie: status %d, calls %d", w.Code, calls)
	}

	// The CLI's bearer token authorizes writes.
	req = httptest.NewRequest(http.MethodPost, "/v1/local/instances", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusOK || calls != 2 {
		t.Fatalf("POST with the bearer token: status %d, calls %d", w.Code, calls)
	}

	// No token at all: 401.
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no token: status %d", w.Code)
	}
}

// Close waits for a handler in progress (and cancels its request, so an
// endless one such as an event stream returns) before it returns: the
// daemon closes the subsystems handlers use right after.
func TestCloseWaitsForHandlers(t *testing.T) {
	s := NewServer("tok", nil)
	entered := make(chan struct{})
	var returned atomic.Bool
	s.HandleFunc("GET /v1/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // like an event stream: ends only when cancelled
		returned.Store(true)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/v1/slow", nil)
		req.Header.Set("Authorization", "Bearer tok")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("Close returned while a handler was still running")
	}
}
