package dashboardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/flashsale/flashsale/bench/serverproc"
)

// chromiumPath is Debian's chromium package's browser.
const chromiumPath = "/usr/bin/chromium"

// envRequireBrowser set to 1 (as .ci/run does) makes a missing browser a
// failure rather than a skip, so that CI cannot pass without running the test.
const envRequireBrowser = "FLASHSALE_REQUIRE_BROWSER"

// envScreenshotDir names a directory to save the page's screenshot in, too.
const envScreenshotDir = "FLASHSALE_SCREENSHOT_DIR"

// Bounds of the test, so that it ends in about 20 s whatever happens.
const (
	loadWorkers     = 8
	loadDurationMax = 15 * time.Second // the load stops by itself after this
	browserTimeout  = 40 * time.Second // everything the browser does
	pageWaitMax     = 10 * time.Second // one wait for the page to show something
)

func TestMain(m *testing.M) {
	code := m.Run()
	serverproc.Cleanup()
	os.Exit(code)
}

// TestDashboardInBrowser runs the real binary under a load of holds, orders
// and payments over HTTP, opens GET / in headless Chromium, and checks that
// the page's figures move with the load, that once the load is paused the
// stock it shows is GET /api/products/{id}'s, that it loaded nothing from
// another origin and logged no error or exception. It saves a screenshot.
func TestDashboardInBrowser(t *testing.T) {
	requireBrowser(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	// Product 1 lasts the whole test; product 2 sells out at once, so that
	// the page shows refusals too.
	if err := os.WriteFile(seed, []byte(`[
		{"id":1,"name":"Flash Widget","price_cents":4999,"total_stock":1000000,"max_per_hold":10},
		{"id":2,"name":"Limited Edition Sneaker","price_cents":19999,"total_stock":20,"max_per_hold":2}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := serverproc.Start(t, serverproc.Build(t), filepath.Join(dir, "data"), "--seed", seed)
	base := srv.URL()
	client := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers * 2}}
	defer client.CloseIdleConnections()

	load := startLoad(t, client, base)
	defer load.stop()

	pg := openPage(t, base+"/")
	defer pg.close()
	ctx := pg.ctx
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != base+"/dashboard" {
		t.Errorf("GET / led to %q (%v), want %s/dashboard", loc, err, base)
	}

	// The numbers change under load: product 1's reserved stock grows from
	// one refresh to a later one, and the charts have rates.
	first := waitPage[float64](t, ctx, "product 1's reserved stock on the page", cellJS(1, "reserved_stock"), func(v float64) bool { return v > 0 })
	waitPage[float64](t, ctx, "product 1's reserved stock to grow", cellJS(1, "reserved_stock"), func(v float64) bool { return v > first })
	waitPage[string](t, ctx, "a rate of holds", `document.getElementById("tile-holds").textContent`,
		func(v string) bool { return v != "–" && v != "0" })
	waitPage[string](t, ctx, "the log's batch size", `document.getElementById("tile-batch").textContent`,
		func(v string) bool { return v != "–" })
	waitPage[string](t, ctx, "the log's fsync latency", `document.getElementById("tile-fsync").textContent`,
		func(v string) bool { return !strings.HasPrefix(v, "–") })
	waitPage[float64](t, ctx, "product 2 sold out", cellJS(2, "available_stock"), func(v float64) bool { return v == 0 })

	// Pause the load; once the page has refreshed from figures read after
	// the last answer, its stock is the API's.
	pausedMs := load.stop()
	waitPage[float64](t, ctx, "a refresh after the pause", `Number(document.body.dataset.nowMs || 0)`,
		func(v float64) bool { return v > float64(pausedMs) })
	polls := waitPage[float64](t, ctx, "the poll count", `Number(document.body.dataset.polls)`, func(float64) bool { return true })
	waitPage[float64](t, ctx, "one more refresh", `Number(document.body.dataset.polls)`, func(v float64) bool { return v > polls })
	for _, id := range []int64{1, 2} {
		api := getProduct(t, client, base, id)
		for _, f := range []string{"total_stock", "available_stock", "reserved_stock", "sold_stock"} {
			shown, err := chromedp.Run(ctx, chromedp.Evaluate[float64](cellJS(id, f)))
			if err != nil {
				t.Fatal(err)
			}
			if int64(shown) != api[f] {
				t.Errorf("product %d %s: the page shows %v, GET /api/products/%d says %d", id, f, shown, id, api[f])
			}
		}
		if api["reserved_stock"] == 0 && api["sold_stock"] == 0 {
			t.Errorf("product %d: the load changed nothing: %v", id, api)
		}
	}

	pg.screenshot("dashboard.png")

	pg.checkClean(base, 6) // the page, 4 assets, stats
}

// cellJS reads a stock figure as the operator sees it: the cell's text
// ("1,000,000"), without its thousands separators; -1 when there is none.
func cellJS(id int64, field string) string {
	return fmt.Sprintf(`(() => { const td = document.querySelector('td[data-product="%d"][data-field="%s"]'); `+
		`return td ? Number(td.textContent.replace(/,/g, "")) : -1 })()`, id, field)
}

// requireBrowser skips the test, saying why, when there is no browser,
// and fails it instead under FLASHSALE_REQUIRE_BROWSER=1.
func requireBrowser(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("no browser at %s (%v): install Debian's chromium package (apt-get install -y chromium) to run this test", chromiumPath, err)
		if os.Getenv(envRequireBrowser) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, envRequireBrowser)
		}
		t.Skip(msg)
	}
}

// page is one browser tab on the dashboard, with what it logged and the
// URLs it requested.
type page struct {
	t     *testing.T
	ctx   context.Context
	close func()

	mu       sync.Mutex
	problems []string // console errors and warnings, exceptions, browser log errors and warnings
	requests []string
}

// openPage starts a browser, listens to its console, exceptions, log and
// requests, and opens url.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	pg := &page{t: t}
	pg.ctx, pg.close = newBrowser(t)
	if err := chromedp.Listen(pg.ctx, pg.event); err != nil {
		pg.close()
		t.Fatal(err)
	}
	if err := chromedp.Do(pg.ctx, chromedp.Navigate(url)); err != nil {
		pg.close()
		t.Fatalf("opening %s: %v", url, err)
	}
	return pg
}

func (pg *page) event(ev any) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			pg.problems = append(pg.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		pg.problems = append(pg.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, text))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			pg.problems = append(pg.problems, fmt.Sprintf("browser log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		pg.requests = append(pg.requests, ev.Request.URL)
	}
}

// checkClean fails the test for anything the page logged, and for any
// request not to base (or a data: URL); it wants at least requestsMin
// requests, so that an empty list is not taken for a clean one.
func (pg *page) checkClean(base string, requestsMin int) {
	pg.t.Helper()
	pg.mu.Lock()
	defer pg.mu.Unlock()
	for _, p := range pg.problems {
		pg.t.Errorf("the page logged: %s", p)
	}
	for _, u := range pg.requests {
		if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
			pg.t.Errorf("the page loaded %s, not from its server", u)
		}
	}
	if len(pg.requests) < requestsMin {
		pg.t.Errorf("the page made only %d requests: %v", len(pg.requests), pg.requests)
	}
}

// screenshot saves the whole page as PNG under name.
func (pg *page) screenshot(name string) {
	pg.t.Helper()
	shot, err := chromedp.Run(pg.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		pg.t.Fatal(err)
	}
	saveScreenshot(pg.t, name, shot)
}

// newBrowser starts headless Chromium with the flags that work on a
// machine without a display, sandbox or network, and a new profile.
func newBrowser(t *testing.T) (context.Context, context.CancelFunc) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1100),
	}
	timeout, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	return ctx, func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancelCtx()
		cancelAlloc()
		cancelTimeout()
	}
}

// waitPage evaluates expr in the page every 100 ms until ok holds, for at
// most pageWaitMax, and returns the value that held.
func waitPage[T any](t *testing.T, ctx context.Context, what, expr string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(pageWaitMax)
	var v T
	var err error
	for time.Now().Before(deadline) {
		v, err = chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err == nil && ok(v) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waited %v for %s: last %v (%v)", pageWaitMax, what, v, err)
	return v
}

// load is loadWorkers goroutines posting holds (product 1, and product 2
// until it is sold out), an order for one hold in four and a payment for
// one order in two, until stop or loadDurationMax.
type load struct {
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	stopped atomic.Int64 // Unix ms of the last answer, set by stop
	ok      atomic.Int64
}

func startLoad(t *testing.T, client *http.Client, base string) *load {
	l := &load{quit: make(chan struct{})}
	end := time.Now().Add(loadDurationMax)
	var seq atomic.Int64
	for w := range loadWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for time.Now().Before(end) {
				select {
				case <-l.quit:
					return
				default:
				}
				n := seq.Add(1)
				product := 1
				if n%5 == 0 {
					product = 2
				}
				status, body := post(client, base+"/api/holds", fmt.Sprintf("h-%d-%d", w, n),
					fmt.Sprintf(`{"product_id":%d,"qty":1}`, product))
				if status != http.StatusCreated || n%4 != 0 {
					continue
				}
				l.ok.Add(1)
				var hold struct {
					Token string `json:"hold_token"`
				}
				if json.Unmarshal(body, &hold) != nil {
					continue
				}
				status, body = post(client, base+"/api/orders", "", `{"hold_token":"`+hold.Token+`"}`)
				if status != http.StatusCreated || n%8 != 0 {
					continue
				}
				var order struct {
					ID int64 `json:"order_id"`
				}
				if json.Unmarshal(body, &order) != nil {
					continue
				}
				post(client, base+"/api/payments/webhook", fmt.Sprintf("pay-%d", order.ID),
					fmt.Sprintf(`{"status":"success","order_id":%d}`, order.ID))
			}
		}()
	}
	return l
}

// stop ends the load, waits for its requests to be answered and returns
// the time after the last answer.
func (l *load) stop() int64 {
	l.once.Do(func() {
		close(l.quit)
		l.wg.Wait()
		l.stopped.Store(time.Now().UnixMilli())
	})
	return l.stopped.Load()
}

func post(client *http.Client, url, key, body string) (int, []byte) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getProduct(t *testing.T, client *http.Client, base string, id int64) map[string]int64 {
	t.Helper()
	resp, err := client.Get(fmt.Sprintf("%s/api/products/%d", base, id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/products/%d: %d %v", id, resp.StatusCode, err)
	}
	out := map[string]int64{}
	for k, v := range p {
		if n, ok := v.(float64); ok {
			out[k] = int64(n)
		}
	}
	return out
}

// saveScreenshot writes the PNG to the test's temporary directory and, when
// FLASHSALE_SCREENSHOT_DIR is set, there too.
func saveScreenshot(t *testing.T, name string, png []byte) {
	dirs := []string{t.TempDir()}
	if d := os.Getenv(envScreenshotDir); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}
