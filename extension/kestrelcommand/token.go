package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"

	serverv1 "github.com/kestrelai/otelcol-kestrel/api/server/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadata"
)

const (
	renewTimeout = 30 * time.Second
	// Failed renewals retry on this backoff; it is not configurable because the
	// reconnect backoff already covers the user-visible behaviour.
	renewRetryInitial = time.Second
	renewRetryMax     = 5 * time.Minute
)

// tokenInfo is one bearer token and the claims the operator reads from it. The
// signature is not verified: the cloud does that; the operator only needs the tenant
// for the autonp-tenantid header and the expiry to schedule renewal.
type tokenInfo struct {
	raw    string
	tenant string
	exp    time.Time // zero if the token has no exp claim
	iat    time.Time // zero if the token has no iat claim
	loaded time.Time
}

func parseToken(raw string, now time.Time) (tokenInfo, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return tokenInfo{}, errors.New("token is empty")
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return tokenInfo{}, fmt.Errorf("token is not a JWT: %w", err)
	}
	tenant, _ := claims["tenant"].(string)
	if tenant == "" {
		return tokenInfo{}, errors.New(`token has no "tenant" claim; it is needed for the autonp-tenantid header`)
	}
	ti := tokenInfo{raw: raw, tenant: tenant, loaded: now}
	if exp, err := claims.GetExpirationTime(); err != nil {
		return tokenInfo{}, fmt.Errorf("token has an invalid exp claim: %w", err)
	} else if exp != nil {
		ti.exp = exp.Time
	}
	if iat, err := claims.GetIssuedAt(); err != nil {
		return tokenInfo{}, fmt.Errorf("token has an invalid iat claim: %w", err)
	} else if iat != nil {
		ti.iat = iat.Time
	}
	return ti, nil
}

// renewAt is when the token should be renewed: renewAt of the way through its
// lifetime. The zero time means never (no exp claim).
func (ti tokenInfo) renewAt(fraction float64) time.Time {
	if ti.exp.IsZero() {
		return time.Time{}
	}
	start := ti.iat
	if start.IsZero() {
		start = ti.loaded
	}
	if !ti.exp.After(start) {
		return start
	}
	return start.Add(time.Duration(fraction * float64(ti.exp.Sub(start))))
}

// newerThan orders tokens by issue time, or by expiry when the issue times are equal
// (JWT times have one-second resolution) or missing.
func (ti tokenInfo) newerThan(other tokenInfo) bool {
	if !ti.iat.IsZero() && !other.iat.IsZero() && !ti.iat.Equal(other.iat) {
		return ti.iat.After(other.iat)
	}
	return ti.exp.After(other.exp)
}

// tokenManager owns the current bearer token. It is the oauth2.TokenSource behind the
// per-RPC credentials, so a renewed token is used by the next RPC without reconnecting,
// and it renews the token on its own timer, independent of the stream connection.
type tokenManager struct {
	cfg    TokenConfig
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	// dial opens a connection for one RenewClusterToken call; a fresh connection per
	// renewal picks up rotated client certificates.
	dial func(context.Context) (*grpc.ClientConn, error)
	// secret, when token::persist_secret is set, keeps renewed tokens.
	secret *secretStore

	mu      sync.RWMutex
	cur     tokenInfo
	lastErr error         // last renewal failure, nil after a success
	updated chan struct{} // closed and replaced whenever the token changes

	// trigger carries a token the cloud rejected; renewing is pointless once the
	// current token is another one.
	trigger chan string
}

func newTokenManager(cfg TokenConfig, logger *zap.Logger, tb *metadata.TelemetryBuilder) *tokenManager {
	return &tokenManager{
		cfg:     cfg,
		logger:  logger,
		tb:      tb,
		updated: make(chan struct{}),
		trigger: make(chan string, 1),
	}
}

// load reads the configured token (file, then env var) and the persisted renewed tokens
// (token::persist_file, token::persist_secret): the newest of the configured tenant wins.
// A persisted token that cannot be read is logged and ignored, never fatal.
func (tm *tokenManager) load(ctx context.Context) error {
	now := time.Now()
	var reasons []string
	var configured tokenInfo
	var found bool
	if tm.cfg.File != "" {
		ti, err := readTokenFile(tm.cfg.File, now)
		if err == nil {
			configured, found = ti, true
		} else {
			reasons = append(reasons, fmt.Sprintf("token::file %q: %v", tm.cfg.File, err))
		}
	}
	if !found && tm.cfg.EnvVar != "" {
		raw, ok := os.LookupEnv(tm.cfg.EnvVar)
		var ti tokenInfo
		var err error
		if !ok {
			err = errors.New("not set")
		} else {
			ti, err = parseToken(raw, now)
		}
		if err == nil {
			configured, found = ti, true
		} else {
			reasons = append(reasons, fmt.Sprintf("env var %s: %v", tm.cfg.EnvVar, err))
		}
	}
	if !found {
		return fmt.Errorf("no usable Kestrel Cloud token (%s)", strings.Join(reasons, "; "))
	}
	tm.cur = configured
	if tm.cfg.PersistFile != "" {
		ti, err := readTokenFile(tm.cfg.PersistFile, now)
		if !errors.Is(err, os.ErrNotExist) {
			tm.consider(zap.String("file", tm.cfg.PersistFile), ti, err)
		}
	}
	if tm.secret != nil {
		ti, found, err := tm.secret.readToken(ctx, tm.cfg.PersistSecret.Key, now)
		if found || err != nil {
			tm.consider(zap.Stringer("secret", tm.secret), ti, err)
		}
	}
	return nil
}

// consider applies the rule for a persisted token (from where): it replaces the current
// token when it is of the same tenant and newer.
func (tm *tokenManager) consider(where zap.Field, persisted tokenInfo, err error) {
	switch {
	case err != nil:
		tm.logger.Warn("Ignoring the persisted token", where, zap.Error(err))
	case persisted.tenant != tm.cur.tenant:
		tm.logger.Warn("Ignoring the persisted token of another tenant",
			where, zap.String("persisted_tenant", persisted.tenant), zap.String("tenant", tm.cur.tenant))
	case persisted.newerThan(tm.cur):
		tm.logger.Info("Using the persisted renewed token", where, zap.Time("expires", persisted.exp))
		tm.cur = persisted
	}
}

func readTokenFile(path string, now time.Time) (tokenInfo, error) {
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return tokenInfo{}, err
	}
	return parseToken(string(b), now)
}

// Token implements oauth2.TokenSource for grpc/credentials/oauth.TokenSource.
func (tm *tokenManager) Token() (*oauth2.Token, error) {
	tm.mu.RLock()
	defer tm.mu.RUnlock()
	// Expiry is deliberately left zero: an expired token is still sent so the server
	// can answer Unauthenticated, which triggers a renewal.
	return &oauth2.Token{AccessToken: tm.cur.raw, TokenType: "Bearer"}, nil
}

func (tm *tokenManager) current() tokenInfo {
	tm.mu.RLock()
	defer tm.mu.RUnlock()
	return tm.cur
}

// changed returns a channel that is closed the next time the token changes.
func (tm *tokenManager) changed() <-chan struct{} {
	tm.mu.RLock()
	defer tm.mu.RUnlock()
	return tm.updated
}

// authError explains an Unauthenticated answer in terms of the token's state.
func (tm *tokenManager) authError(err error) error {
	tm.mu.RLock()
	defer tm.mu.RUnlock()
	if !tm.cur.exp.IsZero() && time.Now().After(tm.cur.exp) {
		if tm.lastErr != nil {
			return fmt.Errorf("token expired and renewal failed: %w", tm.lastErr)
		}
		return fmt.Errorf("token expired, renewing: %w", err)
	}
	return err
}

// renewSoon asks the renewal loop to renew now because the cloud answered
// Unauthenticated to the token rejected. A request already pending is enough.
func (tm *tokenManager) renewSoon(rejected string) {
	select {
	case tm.trigger <- rejected:
	default:
	}
}

// run renews the token at its renewal time, on demand, and retries failures with
// backoff until ctx is done. Failures are logged and counted, never fatal.
func (tm *tokenManager) run(ctx context.Context) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     renewRetryInitial,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         renewRetryMax,
	}
	failing := false
	for {
		var wait <-chan time.Time
		if failing {
			wait = time.After(bo.NextBackOff())
		} else if at := tm.current().renewAt(tm.cfg.RenewAt); !at.IsZero() {
			wait = time.After(time.Until(at))
		}
		select {
		case <-ctx.Done():
			return
		case rejected := <-tm.trigger:
			if rejected != tm.current().raw {
				continue // renewed since that token was rejected
			}
		case <-wait:
		}
		if err := tm.renew(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failing = true
			tm.tb.KestrelCommandTokenRenewals.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "failure")))
			tm.logger.Warn("Token renewal failed; retrying", zap.Error(err))
			continue
		}
		tm.tb.KestrelCommandTokenRenewals.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "success")))
		if at := tm.current().renewAt(tm.cfg.RenewAt); !at.IsZero() && !at.After(time.Now()) {
			// Due again at once (a skewed clock or a tiny TTL): keep backing off rather
			// than renewing in a tight loop.
			failing = true
			tm.logger.Warn("The renewed token is already due for renewal; is the clock right?", zap.Time("expires", tm.current().exp))
			continue
		}
		failing = false
		bo.Reset()
	}
}

func (tm *tokenManager) renew(ctx context.Context) (err error) {
	defer func() {
		tm.mu.Lock()
		tm.lastErr = err
		tm.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	conn, err := tm.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	old := tm.current()
	resp, err := serverv1.NewAutonpServerServiceClient(conn).RenewClusterToken(ctx, &serverv1.RenewClusterTokenRequest{CurrentToken: old.raw})
	if err != nil {
		return fmt.Errorf("RenewClusterToken: %w", err)
	}
	next, err := parseToken(resp.GetAccessToken(), time.Now())
	if err != nil {
		return fmt.Errorf("RenewClusterToken returned an unusable token: %w", err)
	}
	if next.exp.IsZero() && resp.GetExpiresIn() > 0 {
		next.exp = next.loaded.Add(time.Duration(resp.GetExpiresIn()) * time.Second)
	}
	if next.tenant != old.tenant {
		return fmt.Errorf("RenewClusterToken returned a token for tenant %q, expected %q", next.tenant, old.tenant)
	}
	tm.persist(ctx, next)
	tm.mu.Lock()
	tm.cur = next
	close(tm.updated)
	tm.updated = make(chan struct{})
	tm.mu.Unlock()
	tm.logger.Info("Renewed the Kestrel Cloud token", zap.Time("expires", next.exp))
	return nil
}

// persist writes a renewed token to token::persist_file and token::persist_secret before
// it is used, so that a token in use is never missing from them. A failure is not fatal:
// only a restart would miss the renewed token, and the next renewal writes again.
func (tm *tokenManager) persist(ctx context.Context, next tokenInfo) {
	if tm.cfg.PersistFile != "" {
		if err := writeAtomic(tm.cfg.PersistFile, []byte(next.raw), 0o600); err != nil {
			tm.logger.Warn("Could not persist the renewed token; it is used from memory and the next renewal writes again",
				zap.String("file", tm.cfg.PersistFile), zap.Error(err))
		}
	}
	if tm.secret != nil {
		written, err := tm.secret.writeToken(ctx, tm.cfg.PersistSecret.Key, next)
		switch {
		case err != nil:
			tm.logger.Warn("Could not persist the renewed token; it is used from memory and the next renewal writes again",
				zap.Stringer("secret", tm.secret), zap.Error(err))
		case !written:
			tm.logger.Info("The Secret already holds a newer token (another replica renewed it); left as it is", zap.Stringer("secret", tm.secret))
		}
	}
}
