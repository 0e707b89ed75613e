package cli

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
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
		Short:  "Small programs for recipes (httpd, try)",
		Hidden: true,
	}
	var addr, message, dir string
	httpd := &cobra.Command{
		Use:   "httpd --addr HOST:PORT [--message TEXT] [--dir DIR]",
		Short: "Serve a page holding a message (and /healthz) until SIGTERM",
		Long: `Serve HTTP on --addr until SIGTERM: GET /healthz answers "ok"; GET / is a
page holding --message. With --dir, every other path (and / when DIR has an
index.html) is a file of DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				return errors.New("--addr HOST:PORT is required")
			}
			mux := http.NewServeMux()
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
			var files http.Handler
			if dir != "" {
				files = http.FileServer(http.Dir(dir))
			}
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if files != nil {
					if _, err := os.Stat(filepath.Join(dir, "index.html")); r.URL.Path != "/" || err == nil {
						files.ServeHTTP(w, r)
						return
					}
				}
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
	httpd.Flags().StringVar(&dir, "dir", "", "also serve the files of this directory")
	cmd.AddCommand(httpd, newToolTryCmd(g))
	return cmd
}
