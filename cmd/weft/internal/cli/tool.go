package cli

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(95, newToolCmd) }

// newToolCmd holds small programs recipes run with {{.Weft}}, so that the
// examples need nothing but weft on a machine.
func newToolCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "tool",
		Short:  "Small programs for recipes (httpd)",
		Hidden: true,
	}
	var addr, message string
	httpd := &cobra.Command{
		Use:   "httpd --addr HOST:PORT [--message TEXT]",
		Short: "Serve a page holding a message (and /healthz) until SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				return errors.New("--addr HOST:PORT is required")
			}
			mux := http.NewServeMux()
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, "<!doctype html><title>weft</title><p>%s</p>\n", html.EscapeString(message))
			})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			fmt.Fprintf(g.Err(), "serving on http://%s/\n", ln.Addr())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	httpd.Flags().StringVar(&addr, "addr", "", "address to listen on, HOST:PORT")
	httpd.Flags().StringVar(&message, "message", "hello from weft", "text shown on the page")
	cmd.AddCommand(httpd)
	return cmd
}
