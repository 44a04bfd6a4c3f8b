// Command sendbench measures fan-out: it seeds customers into a database,
// starts an event campaign for all of them and sends it with one worker's
// dispatcher through the SendGrid adapter to an in-process fake SendGrid,
// then prints emails per second (and checks each went out exactly once).
//
//	go run ./scripts/sendbench -database postgres://…/rapport_bench -n 20000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

func main() {
	dbURL := flag.String("database", os.Getenv("DATABASE_URL"), "database URL (a scratch database: customers are added)")
	n := flag.Int("n", 20000, "invitations")
	latency := flag.Duration("latency", 0, "fake SendGrid latency per request")
	batch := flag.Int("batch", 1000, "recipients per request")
	conc := flag.Int("concurrency", 2, "requests in flight")
	prof := flag.String("cpuprofile", "", "write a CPU profile of this process during the send (not the seeding) here: the dispatcher and the fake SendGrid, or with -bin the fake SendGrid and the polling")
	flag.StringVar(&workerBin, "bin", "", "send with real `rapport worker` processes of this binary instead of in this process")
	flag.IntVar(&workers, "workers", 1, "worker processes (with -bin)")
	flag.Parse()
	cpuProfile = *prof
	if err := run(*dbURL, *n, *latency, *batch, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "sendbench:", err)
		os.Exit(1)
	}
}

var (
	cpuProfile string
	workerBin  string
	workers    int
)

func run(dbURL string, n int, latency time.Duration, batch, conc int) error {
	ctx := context.Background()
	store, err := campaigns.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	tag := fmt.Sprintf("bench%d", time.Now().Unix())
	t0 := time.Now()
	if _, err := store.Seed(ctx, campaigns.SeedOptions{Customers: n, Metros: 1, Seed: 1, Actor: "bench", Tag: tag}); err != nil {
		return err
	}
	// Reach exactly this run's customers: level and spend filters would
	// miss some, and earlier runs left others in the same metro.
	if err := store.DB().Exec("UPDATE customers SET metro_area = ?, metro_key = ?, consent_state = 'subscribed' WHERE email LIKE ?",
		tag, tag, "%@"+tag+".example.com").Error; err != nil {
		return err
	}
	fmt.Printf("seeded %d customers in %s\n", n, time.Since(t0).Round(time.Millisecond))
	// A seed into an empty table (50,000 customers or more) is a fresh load,
	// which leaves customer search to the scheduler's one-off fill
	// (campaigns/search.go). With -bin the workers ran that fill and its
	// index build inside the timed send (PostgreSQL's CPU for 100,000
	// emails 12.8-15.8 s with it, 8.2-10.0 s without). A database a minute
	// or two past its import has it done; so does this one.
	t0 = time.Now()
	if _, err := store.FillCustomerSearch(ctx); err != nil {
		return fmt.Errorf("fill customer search: %w", err)
	}
	// The fill does nothing while another process holds it; then it would
	// still be running during the send.
	if filled, err := store.CustomerSearchFilled(ctx); err != nil {
		return err
	} else if !filled {
		return errors.New("customer search is still not filled: is another process filling it?")
	}
	fmt.Printf("filled customer search in %s\n", time.Since(t0).Round(time.Millisecond))

	start := time.Now().Add(30 * 24 * time.Hour)
	end := start.Add(3 * time.Hour)
	c, err := store.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Bench " + tag,
		TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{tag}},
		Event: &campaigns.EventFields{Venue: "Hall", StartsAt: &start, EndsAt: &end, Capacity: 100}}, "bench")
	if err != nil {
		return err
	}
	if _, err := store.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true}); err != nil {
		return err
	}
	fake := sendgridfake.New()
	defer fake.Close()
	fake.SetLatency(latency)
	mailer := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.bench", BaseURL: fake.URL})
	comp, err := jobs.NewComposer("https://rapport.example.com", mail.Address{Name: "Rapport", Address: "events@example.com"}, "1 Main St")
	if err != nil {
		return err
	}
	stop, err := startProfile()
	if err != nil {
		return err
	}
	defer stop()
	if workerBin != "" {
		return sendWithWorkers(ctx, store, c, fake, dbURL, n, batch, conc)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := jobs.NewDispatcher(store, mailer, comp, jobs.DispatchConfig{BatchSize: batch, Concurrency: conc}, log)

	t1 := time.Now()
	for {
		if err := d.Tick(ctx); err != nil {
			return err
		}
		c, err = store.Campaign(ctx, c.ID)
		if err != nil {
			return err
		}
		if c.Status == campaigns.StatusSent {
			break
		}
	}
	el := time.Since(t1)
	per := fake.PerRecipient()
	dups := 0
	for _, k := range per {
		if k > 1 {
			dups++
		}
	}
	fmt.Printf("sent %d invitations in %s: %.0f emails/s (freeze included); %d requests; %d recipients, %d duplicates\n",
		fake.DeliveredCount(), el.Round(time.Millisecond), float64(fake.DeliveredCount())/el.Seconds(), fake.Requests(), len(per), dups)
	if len(per) != n || dups != 0 {
		return fmt.Errorf("expected %d recipients once each", n)
	}
	// Peak memory of this process (worker, fake SendGrid and seeding).
	fmt.Printf("peak RSS %d MB\n", vmHWM("/proc/self/status")/1024)
	return nil
}

// startProfile starts the CPU profile -cpuprofile asks for; stop ends it.
func startProfile() (stop func(), err error) {
	if cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// sendWithWorkers lets real worker processes send the campaign and reports
// their speed and each one's peak memory (VmHWM), read before they stop.
func sendWithWorkers(ctx context.Context, store *campaigns.Store, c *campaigns.Campaign, fake *sendgridfake.Server,
	dbURL string, n, batch, conc int) error {
	t1 := time.Now()
	pg0, self0 := postgresCPU(), selfCPU()
	var cmds []*exec.Cmd
	defer func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	}()
	for i := 0; i < workers; i++ {
		cmd := exec.Command(workerBin, "worker")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "SENDGRID_API_KEY=SG.bench", "SENDGRID_BASE_URL="+fake.URL,
			"SCHEDULER_TICK=100ms", fmt.Sprintf("SEND_BATCH_SIZE=%d", batch), fmt.Sprintf("SEND_CONCURRENCY=%d", conc),
			"BASE_URL=https://rapport.example.com", "MAIL_POSTAL_ADDRESS=1 Main St")
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	var first time.Duration // until the first request reached the fake: freeze and start-up
	for {
		cur, err := store.Campaign(ctx, c.ID)
		if err != nil {
			return err
		}
		if first == 0 && fake.Requests() > 0 {
			first = time.Since(t1)
		}
		if cur.Status == campaigns.StatusSent {
			break
		}
		if time.Since(t1) > 10*time.Minute {
			return fmt.Errorf("the workers did not finish in 10 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	el := time.Since(t1)
	peak := 0
	var workerCPU time.Duration
	for _, cmd := range cmds {
		peak = max(peak, vmHWM(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)))
		workerCPU += procCPU(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	}
	pgCPU, selfCPU := postgresCPU()-pg0, selfCPU()-self0
	per := fake.PerRecipient()
	dups := 0
	for _, k := range per {
		if k > 1 {
			dups++
		}
	}
	fmt.Printf("sent %d invitations in %s with %d worker process(es): %.0f emails/s (freeze and start-up included); %d recipients, %d duplicates\n",
		fake.DeliveredCount(), el.Round(time.Millisecond), workers, float64(fake.DeliveredCount())/el.Seconds(), len(per), dups)
	fmt.Printf("worker peak RSS %d MB\n", peak/1024)
	// Where the two cores went: sending is only as fast as all three allow.
	fmt.Printf("first request after %s; CPU: workers %s, PostgreSQL %s, this process (fake SendGrid, polling) %s\n",
		first.Round(time.Millisecond), workerCPU.Round(time.Millisecond), pgCPU.Round(time.Millisecond), selfCPU.Round(time.Millisecond))
	cpuBudget(n, el, workerCPU, pgCPU, selfCPU)
	if len(per) != n || dups != 0 {
		return fmt.Errorf("expected %d recipients once each", n)
	}
	return nil
}

// cpuBudget prints what the send cost the machine per 100,000 emails and
// the most its cores allow at that cost: a send on one machine is only as
// fast as the CPU of the workers, PostgreSQL and the fake together, so
// more workers add speed only while cores are idle. The fake's share is
// the bench's own (SendGrid runs elsewhere); the second ceiling leaves it
// out. PostgreSQL's figure errs low (postgresCPU), so both err high.
func cpuBudget(n int, el, workerCPU, pgCPU, fakeCPU time.Duration) {
	total := workerCPU + pgCPU + fakeCPU
	if n == 0 || total <= 0 {
		return
	}
	per := func(d time.Duration) float64 { return d.Seconds() * 100000 / float64(n) }
	cores := float64(runtime.NumCPU())
	fmt.Printf("CPU per 100,000 emails: %.1f s (workers %.1f, PostgreSQL %.1f, fake %.1f); %.2f of %.0f cores busy; "+
		"the cores allow at most %.0f emails/s, %.0f without the fake's share\n",
		per(total), per(workerCPU), per(pgCPU), per(fakeCPU), total.Seconds()/el.Seconds(), cores,
		cores*float64(n)/total.Seconds(), cores*float64(n)/(workerCPU+pgCPU).Seconds())
}

// procCPU is the user and system CPU time a process has used, from its
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(stat string) time.Duration {
	b, err := os.ReadFile(stat)
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// postgresCPU sums procCPU over every process named postgres on this
// machine (a bench machine: nothing else should be using it). Backends
// that exit between two readings are missed, so it errs low.
func postgresCPU() time.Duration {
	var sum time.Duration
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			sum += procCPU(d + "/stat")
		}
	}
	return sum
}

func selfCPU() time.Duration { return procCPU("/proc/self/stat") }

// vmHWM is a process's peak resident memory in kB, from /proc.
func vmHWM(status string) int {
	st, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	if m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(st); m != nil {
		kb, _ := strconv.Atoi(string(m[1]))
		return kb
	}
	return 0
}
