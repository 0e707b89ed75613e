package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

func newInstanceConnectCmd(g *Globals) *cobra.Command {
	var port, local string
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Forward a local TCP port to one of the instance's ports, over the grid",
		Long: `Listen on a local TCP address and forward every connection to one of the
instance's ports, wherever it runs: over a libp2p stream to its host, direct,
hole-punched or through a relay (a host behind NAT is reachable this way even
when its instance's URL works only inside its home). Only the instance's
requester and the guardians its request delegates to may connect; the host
refuses anyone else. --port names the recipe's port (needed when the
software type has several); --local is the address to listen on (default
127.0.0.1:0: a free port, printed). It runs until interrupted (Ctrl-C).
With --json it prints {"local", "instance", "port", "node"} once listening.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			name := args[0]
			a, err := c.Instance(cmd.Context(), name)
			if err != nil {
				return notFound(err, "instance", "weft instance list")
			}
			v := a.Value
			ln, err := net.Listen("tcp", local)
			if err != nil {
				return fmt.Errorf("connect: listen on %s: %w", local, err)
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go func() { <-ctx.Done(); _ = ln.Close() }()
			if g.JSON {
				if err := g.PrintJSON(map[string]string{"local": ln.Addr().String(), "instance": name, "port": port, "node": v.Node}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.Out(), "forwarding %s to %s (port %s, on %s); Ctrl-C to stop\n", ln.Addr(), name, orAny(port), shortID(v.Node))
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			for {
				conn, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("connect: %w", err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := forward(ctx, c, name, port, conn); err != nil {
						fmt.Fprintln(g.Err(), "weft: connect:", err)
					}
				}()
			}
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "the recipe's port name (default: the instance's only port)")
	cmd.Flags().StringVar(&local, "local", "127.0.0.1:0", "local HOST:PORT to listen on")
	return cmd
}

func orAny(port string) string {
	if port == "" {
		return "its only one"
	}
	return port
}

// forward asks the node's API for a tunnel to the instance's port and
// pipes conn through it.
func forward(ctx context.Context, c *api.Client, name, port string, conn net.Conn) error {
	defer conn.Close()
	addr := strings.TrimPrefix(c.Base, "http://")
	var d net.Dialer
	apiConn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer apiConn.Close()
	stop := context.AfterFunc(ctx, func() { _ = apiConn.Close(); _ = conn.Close() })
	defer stop()
	path := "/v1/instances/" + url.PathEscape(name) + "/connect"
	if port != "" {
		path += "?port=" + url.QueryEscape(port)
	}
	req, err := http.NewRequest(http.MethodGet, c.Base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("Upgrade", api.TunnelUpgrade)
	req.Header.Set("Connection", "Upgrade")
	if err := req.Write(apiConn); err != nil {
		return err
	}
	br := bufio.NewReader(apiConn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		var eb api.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if jsonErr := json.Unmarshal(b, &eb); jsonErr != nil || eb.Error == "" {
			eb.Error = resp.Status
		}
		return errors.New(eb.Error)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(apiConn, conn)
		if tc, ok := apiConn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, br)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	wg.Wait()
	return nil
}
