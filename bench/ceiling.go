package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// ceilingChildEnv, set to "1" in a process's environment, asks a binary that
// calls RunCeilingChildIfAsked to serve the ceiling instead of its usual job.
const ceilingChildEnv = "FLASHBENCH_CEILING_SERVER"

// ceilingStartTimeout bounds the wait for the child to report its address.
const ceilingStartTimeout = 10 * time.Second

// Constant answers of the ceiling server: a product and a one-product list,
// the same sizes as real answers, so the ceiling measures HTTP alone.
var (
	ceilingProductBody = []byte(`{"id":1,"name":"Flash Widget","price_cents":4999,"total_stock":100,"available_stock":97,"reserved_stock":2,"sold_stock":1,"max_per_hold":10}`)
	ceilingListBody    = append(append([]byte(`{"products":[`), ceilingProductBody...), "]}"...)
)

// ceilingHandler answers every request with a constant JSON body.
func ceilingHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentTypeBytes(jsonContentType)
	if string(ctx.Path()) == "/api/products" {
		ctx.SetBody(ceilingListBody)
		return
	}
	ctx.SetBody(ceilingProductBody)
}

// RunCeilingChildIfAsked serves the ceiling and exits the process if this
// process was started as flashbench's ceiling server; otherwise it returns
// at once. Call it first thing in main (and in TestMain).
func RunCeilingChildIfAsked() {
	if os.Getenv(ceilingChildEnv) != "1" {
		return
	}
	if err := serveCeiling(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveCeiling listens on a free loopback port, writes "listening ADDR\n"
// to announce, and serves until stop reaches EOF (the parent closed it or
// died).
func serveCeiling(stop io.Reader, announce io.Writer) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &fasthttp.Server{Handler: ceilingHandler, Name: "ceiling"}
	if _, err := fmt.Fprintf(announce, "listening %s\n", ln.Addr()); err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, stop)
		_ = srv.Shutdown()
	}()
	return srv.Serve(ln)
}

// ceilingProcess is a running ceiling server child.
type ceilingProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startCeiling starts exe as a ceiling server in its own process and waits
// for its address.
func startCeiling(exe string) (*ceilingProcess, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ceilingChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ceiling server %s: %w", exe, err)
	}
	p := &ceilingProcess{cmd: cmd, stdin: stdin}
	lineCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lineCh <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lineCh:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
		if !ok {
			p.stop()
			return nil, fmt.Errorf("ceiling server %s said %q, want \"listening ADDR\"", exe, line)
		}
		p.addr = addr
		return p, nil
	case <-time.After(ceilingStartTimeout):
		p.stop()
		return nil, errors.New("ceiling server did not start in time")
	}
}

// stop ends the child: closing its stdin asks it to shut down; it is killed
// if it has not exited a few seconds later.
func (p *ceilingProcess) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
