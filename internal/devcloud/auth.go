package devcloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Metadata keys the operator sends on every stream open
// (docs/protocol.md#bearer-token-and-tenant-header).
const (
	authorizationKey = "authorization"
	tenantKey        = "autonp-tenantid"
)

// identity is who opened a stream: the verified client certificate plus the token.
type identity struct {
	id          string
	tenant      string
	certSubject string
	certSerial  string
	tokenExpiry time.Time
}

// tokenClaims is what devcloud reads from its own tokens.
type tokenClaims struct {
	tenant string
	expiry time.Time
}

// parseToken checks the HS256 signature and, unless allowExpired, the expiry. Errors
// name the failed check because operators surface them verbatim in their logs.
func parseToken(key []byte, raw string, allowExpired bool) (tokenClaims, error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()})}
	if allowExpired {
		opts = append(opts, jwt.WithoutClaimsValidation())
	} else {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key, nil }, opts...)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenClaims{}, errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return tokenClaims{}, errors.New("bad token signature")
	case err != nil:
		return tokenClaims{}, fmt.Errorf("invalid token: %w", err)
	}
	tenant, _ := claims["tenant"].(string)
	if tenant == "" {
		return tokenClaims{}, errors.New("token has no tenant claim")
	}
	var tc tokenClaims
	tc.tenant = tenant
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		tc.expiry = exp.Time
	}
	return tc, nil
}

// authenticate validates a stream open: verified client certificate, bearer token and
// the tenant header. Every failure is codes.Unauthenticated.
func (s *Server) authenticate(ctx context.Context) (identity, error) {
	var id identity
	p, ok := peer.FromContext(ctx)
	if !ok {
		return id, status.Error(codes.Unauthenticated, "no peer information")
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(tlsInfo.State.VerifiedChains) == 0 || len(tlsInfo.State.VerifiedChains[0]) == 0 {
		return id, status.Error(codes.Unauthenticated, "no verified client certificate")
	}
	cert := tlsInfo.State.VerifiedChains[0][0]
	if cert.Subject.CommonName == "" {
		return id, status.Error(codes.Unauthenticated, "client certificate has no subject CN")
	}

	md, _ := metadata.FromIncomingContext(ctx)
	auth := firstValue(md, authorizationKey)
	if auth == "" {
		return id, status.Error(codes.Unauthenticated, "missing authorization metadata")
	}
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return id, status.Error(codes.Unauthenticated, "authorization metadata is not a Bearer token")
	}
	claims, err := parseToken(s.tokenKey, strings.TrimSpace(raw), false)
	if err != nil {
		return id, status.Error(codes.Unauthenticated, err.Error())
	}
	header := firstValue(md, tenantKey)
	switch {
	case header == "":
		return id, status.Error(codes.Unauthenticated, "missing autonp-tenantid metadata")
	case header != claims.tenant:
		return id, status.Errorf(codes.Unauthenticated, "autonp-tenantid %q does not match token tenant %q", header, claims.tenant)
	}

	id.tenant = claims.tenant
	id.tokenExpiry = claims.expiry
	id.certSubject = cert.Subject.CommonName
	id.certSerial = cert.SerialNumber.Text(16)
	id.id = id.certSubject + "/" + id.tenant
	return id, nil
}

func firstValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
