// Package sendgridfake is a fake SendGrid v3 API for tests and load
// scripts: it checks request bodies the way SendGrid does, answers as
// SendGrid does (202 with X-Message-Id, 400 with {"errors": [...]}, 429
// with Retry-After), honours batch ids and scheduled-send cancels, and can
// be told to fail in the ways a real service fails. Its record of what was
// delivered is the judge of exactly-once tests.
package sendgridfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Delivery is one personalization of an accepted send.
type Delivery struct {
	Email         string
	Name          string
	Subject       string
	BatchID       string
	SendAt        int64
	InvitationID  string
	Substitutions map[string]string
	Headers       map[string]string
	Categories    []string
	Content       map[string]string // MIME type → value
	Attachments   []Attachment
	MessageID     string
}

// Attachment is a file of an accepted send.
type Attachment struct {
	Filename, Type, Content string // Content: base64
}

// Server is a running fake.
type Server struct {
	URL string
	srv *httptest.Server

	mu          sync.Mutex
	rng         *mrand.Rand
	sends       [][]Delivery    // by request: one slice of every recipient was copied whole each time it grew
	batches     map[string]bool // created
	cancelled   map[string]bool
	requests    int
	failNext    []int
	rateProb    float64
	retryAfter  time.Duration
	resetProb   float64
	acceptThen  int // answer 500 after recording the next n sends
	latency     time.Duration
	hang        bool
	hangRelease chan struct{}
}

// New starts a fake on a free local port.
func New() *Server {
	s := &Server{rng: mrand.New(mrand.NewPCG(1, 2)), batches: map[string]bool{}, cancelled: map[string]bool{},
		hangRelease: make(chan struct{})}
	s.srv = httptest.NewServer(s.Handler())
	s.URL = s.srv.URL
	return s
}

// Close stops the fake (and releases hung requests).
func (s *Server) Close() {
	s.mu.Lock()
	if s.hang {
		s.hang = false
		close(s.hangRelease)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// FailNext answers the next len(statuses) send requests with these statuses.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.failNext = append(s.failNext, status)
	}
}

// SetRateLimit answers a fraction of send requests 429 with Retry-After.
func (s *Server) SetRateLimit(prob float64, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateProb, s.retryAfter = prob, retryAfter
}

// SetLatency delays every request, like a slow service.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetResets drops a fraction of send requests' connections unanswered.
func (s *Server) SetResets(prob float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetProb = prob
}

// AcceptThenFail records the next n sends as accepted but answers 500:
// the ambiguous failure.
func (s *Server) AcceptThenFail(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acceptThen = n
}

// Hang makes requests wait until Hang(false) or Close.
func (s *Server) Hang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on && !s.hang {
		s.hangRelease = make(chan struct{})
	}
	if !on && s.hang {
		close(s.hangRelease)
	}
	s.hang = on
}

// Delivered lists personalizations accepted in batches not cancelled.
func (s *Server) Delivered() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, req := range s.sends {
		n += len(req)
	}
	out := make([]Delivery, 0, n)
	for _, req := range s.sends {
		for _, d := range req {
			if d.BatchID == "" || !s.cancelled[d.BatchID] {
				out = append(out, d)
			}
		}
	}
	return out
}

// DeliveredCount counts Delivered.
func (s *Server) DeliveredCount() int { return len(s.Delivered()) }

// PerRecipient counts deliveries by recipient address.
func (s *Server) PerRecipient() map[string]int {
	out := map[string]int{}
	for _, d := range s.Delivered() {
		out[d.Email]++
	}
	return out
}

// Requests counts every request received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Cancelled reports whether a batch was cancelled.
func (s *Server) Cancelled(batchID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled[batchID]
}

type sgErr struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

func writeErrors(w http.ResponseWriter, status int, errs ...sgErr) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": errs})
}

func field(f string) *string { return &f }

// Handler is the fake's HTTP API, for serving from another process.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/mail/batch", func(w http.ResponseWriter, r *http.Request) {
		id := newID()
		s.mu.Lock()
		s.batches[id] = true
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"batch_id": id})
	})
	mux.HandleFunc("POST /v3/user/scheduled_sends", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			BatchID string `json:"batch_id"`
			Status  string `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.BatchID == "" ||
			(body.Status != "cancel" && body.Status != "pause") {
			writeErrors(w, http.StatusBadRequest, sgErr{Message: "batch_id and status (cancel or pause) are required", Field: field("batch_id")})
			return
		}
		s.mu.Lock()
		known := s.batches[body.BatchID]
		if known {
			s.cancelled[body.BatchID] = true
		}
		s.mu.Unlock()
		if !known {
			writeErrors(w, http.StatusBadRequest, sgErr{Message: "invalid batch id", Field: field("batch_id")})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("POST /v3/mail/send", s.send)
	mux.HandleFunc("GET /_fake/stats", func(w http.ResponseWriter, r *http.Request) {
		per := s.PerRecipient()
		dups := 0
		for _, n := range per {
			if n > 1 {
				dups++
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"delivered": s.DeliveredCount(), "recipients": len(per),
			"duplicates": dups, "requests": s.Requests()})
	})
	return s.common(mux)
}

// common applies what every endpoint shares: auth, latency, hangs.
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		lat, hang, release := s.latency, s.hang, s.hangRelease
		s.mu.Unlock()
		if hang {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if lat > 0 {
			time.Sleep(lat)
		}
		if !strings.HasPrefix(r.URL.Path, "/_fake/") {
			auth := r.Header.Get("Authorization")
			if !strings.HasPrefix(auth, "Bearer ") || strings.TrimSpace(auth[7:]) == "" {
				writeErrors(w, http.StatusUnauthorized, sgErr{Message: "The provided authorization grant is invalid, expired, or revoked"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type sgEmail struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type sgRequest struct {
	Personalizations []struct {
		To            []sgEmail         `json:"to"`
		CC            []sgEmail         `json:"cc"`
		BCC           []sgEmail         `json:"bcc"`
		Subject       string            `json:"subject"`
		Headers       map[string]string `json:"headers"`
		Substitutions map[string]string `json:"substitutions"`
		CustomArgs    map[string]any    `json:"custom_args"`
		SendAt        int64             `json:"send_at"`
	} `json:"personalizations"`
	From    *sgEmail `json:"from"`
	Subject string   `json:"subject"`
	Content []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"content"`
	Attachments []struct {
		Content, Type, Filename string
	} `json:"attachments"`
	TemplateID string         `json:"template_id"`
	Categories []string       `json:"categories"`
	CustomArgs map[string]any `json:"custom_args"`
	SendAt     int64          `json:"send_at"`
	BatchID    string         `json:"batch_id"`
}

func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var status int
	if len(s.failNext) > 0 {
		status, s.failNext = s.failNext[0], s.failNext[1:]
	}
	rateLimited := s.rateProb > 0 && s.rng.Float64() < s.rateProb
	reset := s.resetProb > 0 && s.rng.Float64() < s.resetProb
	retry := s.retryAfter
	s.mu.Unlock()
	if reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
	if rateLimited || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry.Seconds()))))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(retry).Unix(), 10))
		writeErrors(w, http.StatusTooManyRequests, sgErr{Message: "too many requests"})
		return
	}
	if status >= 500 {
		writeErrors(w, status, sgErr{Message: "internal error"})
		return
	}
	// Room for the whole body up front: io.ReadAll grows from 512 bytes, and
	// a batch of 1,000 is over a megabyte.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), 31<<20)+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(r.Body, 31<<20))
	body := buf.Bytes()
	if err != nil {
		writeErrors(w, http.StatusBadRequest, sgErr{Message: "could not read the body"})
		return
	}
	if len(body) > 30<<20 {
		writeErrors(w, http.StatusRequestEntityTooLarge, sgErr{Message: "the request is larger than 30 MB"})
		return
	}
	var req sgRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeErrors(w, http.StatusBadRequest, sgErr{Message: "Bad Request: the JSON is invalid: " + err.Error()})
		return
	}
	if errs := s.validate(&req); len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs...)
		return
	}
	msgID := newID()
	// The request's content and attachments are the same for every
	// recipient: they share one copy.
	content := map[string]string{}
	for _, c := range req.Content {
		content[c.Type] = c.Value
	}
	var atts []Attachment
	for _, a := range req.Attachments {
		atts = append(atts, Attachment{Filename: a.Filename, Type: a.Type, Content: a.Content})
	}
	n := 0
	for _, p := range req.Personalizations {
		n += len(p.To)
	}
	accepted := make([]Delivery, 0, n)
	for _, p := range req.Personalizations {
		subject := req.Subject
		if p.Subject != "" {
			subject = p.Subject
		}
		inv := ""
		if v, ok := p.CustomArgs["invitation_id"].(string); ok {
			inv = v
		}
		sendAt := req.SendAt
		if p.SendAt != 0 {
			sendAt = p.SendAt
		}
		for _, to := range p.To {
			accepted = append(accepted, Delivery{Email: strings.ToLower(to.Email), Name: to.Name, Subject: subject,
				BatchID: req.BatchID, SendAt: sendAt, InvitationID: inv, Substitutions: p.Substitutions,
				Headers: p.Headers, Categories: req.Categories, Content: content, Attachments: atts, MessageID: msgID})
		}
	}
	s.mu.Lock()
	s.sends = append(s.sends, accepted)
	failAfter := s.acceptThen > 0
	if failAfter {
		s.acceptThen--
	}
	s.mu.Unlock()
	if failAfter {
		writeErrors(w, http.StatusInternalServerError, sgErr{Message: "internal error"})
		return
	}
	w.Header().Set("X-Message-Id", msgID)
	w.WriteHeader(http.StatusAccepted)
}

// validate checks a send the way SendGrid's API does, naming the field.
func (s *Server) validate(req *sgRequest) []sgErr {
	var errs []sgErr
	add := func(f, msg string) { errs = append(errs, sgErr{Message: msg, Field: field(f)}) }
	if req.From == nil || !validEmail(req.From.Email) {
		add("from.email", "The from email does not contain a valid address.")
	}
	n := len(req.Personalizations)
	if n == 0 || n > 1000 {
		add("personalizations", "The personalizations field is required and must have at least one personalization and at most 1000.")
	}
	total := 0
	for i, p := range req.Personalizations {
		if len(p.To) == 0 {
			add(fmt.Sprintf("personalizations.%d.to", i), "The to array is required for all personalization objects, and must have at least one email object with a valid email address.")
		}
		for j, to := range p.To {
			if !validEmail(to.Email) {
				add(fmt.Sprintf("personalizations.%d.to.%d.email", i, j), "Does not contain a valid address.")
			}
		}
		total += len(p.To) + len(p.CC) + len(p.BCC)
		if req.Subject == "" && p.Subject == "" && req.TemplateID == "" {
			add(fmt.Sprintf("personalizations.%d.subject", i), "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.")
		}
		for k, v := range p.CustomArgs {
			if _, ok := v.(string); !ok {
				add(fmt.Sprintf("personalizations.%d.custom_args.%s", i, k), "Custom args values must be strings.")
			}
		}
	}
	if total > 1000 {
		add("personalizations", "The total number of recipients must be no more than 1000.")
	}
	if req.TemplateID == "" {
		if len(req.Content) == 0 {
			add("content", "Unless a valid template_id is provided, the content parameter is required.")
		}
		for i, c := range req.Content {
			if c.Type == "" || c.Value == "" {
				add(fmt.Sprintf("content.%d", i), "Content type and value are required.")
			}
		}
	}
	if req.SendAt != 0 && time.Unix(req.SendAt, 0).After(time.Now().Add(72*time.Hour)) {
		add("send_at", "send_at may not be more than 72 hours in the future.")
	}
	if req.BatchID != "" {
		s.mu.Lock()
		known := s.batches[req.BatchID]
		s.mu.Unlock()
		if !known {
			add("batch_id", "The batch id is not valid.")
		}
	}
	for i, a := range req.Attachments {
		if a.Filename == "" || a.Content == "" {
			add(fmt.Sprintf("attachments.%d", i), "Attachments need a filename and content.")
		} else if _, err := base64.StdEncoding.DecodeString(a.Content); err != nil {
			add(fmt.Sprintf("attachments.%d.content", i), "The attachment content must be base64 encoded.")
		}
	}
	return errs
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewWebhookKey makes a key pair for signing events like SendGrid, and
// the base64 public key for SENDGRID_WEBHOOK_PUBLIC_KEY.
func NewWebhookKey() (*ecdsa.PrivateKey, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return k, base64.StdEncoding.EncodeToString(der)
}

// SignWebhook signs a payload as SendGrid does: ECDSA over timestamp +
// payload, ASN.1 DER, base64. It returns the two headers' values.
func SignWebhook(k *ecdsa.PrivateKey, payload []byte, ts time.Time) (signature, timestamp string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	h := sha256.Sum256(append([]byte(timestamp), payload...))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig), timestamp
}
