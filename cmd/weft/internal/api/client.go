package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrNoNode means the data dir has no running node's endpoint (no or a
// malformed api.json).
var ErrNoNode = errors.New("api: no running node found")

// ErrUnreachable means nothing answers at the address api.json names: the
// node stopped (or crashed) and left its api.json behind.
var ErrUnreachable = errors.New("api: no node answers")

// Client talks to one node's API.
type Client struct {
	// Base is the server's base URL, e.g. http://127.0.0.1:7000.
	Base string
	// DataDir is the data dir the endpoint was read from ("" for NewClient);
	// error messages use it to say how to start the node.
	DataDir string
	token   string
	http    *http.Client
}

// Error is a non-2xx answer from the API.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the API's error text.
	Message string
}

func (e *Error) Error() string { return e.Message }

// StartHint says how to start a node for dataDir, for error messages.
func StartHint(dataDir string) string {
	return fmt.Sprintf("start one with `weft node --data-dir %s` (or set WEFT_DATA_DIR)", dataDir)
}

// NewClient returns a client for addr (host:port) with token.
func NewClient(addr, token string) *Client {
	return &Client{Base: "http://" + addr, token: token, http: &http.Client{}}
}

// NewClientFromDataDir reads dataDir/api.json.
func NewClientFromDataDir(dataDir string) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "api.json"))
	if err != nil {
		return nil, &hintError{ErrNoNode, fmt.Sprintf("no weft node answers for data dir %s (is a node running?): %s", dataDir, StartHint(dataDir))}
	}
	var ep Endpoint
	if err := json.Unmarshal(b, &ep); err != nil || ep.Addr == "" {
		return nil, &hintError{ErrNoNode, fmt.Sprintf("%s is malformed (is a node running?): stop any node of that data dir, remove the file, and %s",
			filepath.Join(dataDir, "api.json"), StartHint(dataDir))}
	}
	c := NewClient(ep.Addr, ep.Token)
	c.DataDir = dataDir
	return c, nil
}

// Token returns the client's token.
func (c *Client) Token() string { return c.token }

// Do sends in (JSON, if non-nil) and decodes the answer into out (if non-nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.Raw(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Raw sends a request and returns the response when its status is 2xx; the
// caller closes the body. Errors from the API come back as *Error.
func (c *Client) Raw(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		if r, ok := in.(io.Reader); ok {
			body = r
		} else {
			b, err := json.Marshal(in)
			if err != nil {
				return nil, err
			}
			body = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("api: %s %s: %w", method, path, ctx.Err())
		}
		return nil, c.unreachable(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("api: %s %s: %s", method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			eb.Error += "; the token in api.json is not this node's: another node now listens at " + c.Base +
				" — restart the node of " + c.dirOr("this data dir")
		}
		return nil, &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	return resp, nil
}

// unreachable explains a failed connection: refused means the node that
// wrote api.json is gone.
func (c *Client) unreachable(err error) error {
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial" {
		if c.DataDir != "" {
			return &hintError{ErrUnreachable, fmt.Sprintf("no weft node answers at %s for data dir %s (is a node running? its api.json is left from a node that stopped): %s",
				strings.TrimPrefix(c.Base, "http://"), c.DataDir, StartHint(c.DataDir))}
		}
		return &hintError{ErrUnreachable, fmt.Sprintf("no weft node answers at %s (is a node running?): %v", strings.TrimPrefix(c.Base, "http://"), err)}
	}
	return fmt.Errorf("api: cannot reach the node at %s: %w", c.Base, err)
}

// hintError is an error whose text says what to do next; errors.Is matches
// its sentinel.
type hintError struct {
	sentinel error
	msg      string
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.sentinel }

func (c *Client) dirOr(s string) string {
	if c.DataDir != "" {
		return c.DataDir
	}
	return s
}

// Get is Do with GET.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out)
}

// Post is Do with POST.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.Do(ctx, http.MethodPost, path, in, out)
}

// WaitReady polls GET /v1/status until the node answers or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if err := c.Get(ctx, "/v1/status", nil); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
