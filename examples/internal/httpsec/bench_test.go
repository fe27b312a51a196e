package httpsec_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// BenchmarkTokens_Verify measures the verification of one request's
// token, beside golang-jwt parsing the same token with the same checks
// and nothing else.
func BenchmarkTokens_Verify(b *testing.B) {
	for _, alg := range []struct {
		name string
		opts httpsec.TokenOptions
		key  any
	}{
		{"HS256", httpsec.TokenOptions{Secret: secret}, secret},
		{"EdDSA", httpsec.TokenOptions{PrivateKey: ed}, edPub},
	} {
		alg.opts.Issuer, alg.opts.Audience = "bench-issuer", "bench-api"
		tok := newTokens(b, alg.opts)
		s := issue(b, tok, "alice", []string{"user", "admin"}, time.Hour)
		b.Run("alg="+alg.name+"/impl=httpsec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tok.Verify(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("alg="+alg.name+"/impl=jwt", func(b *testing.B) {
			p := jwt.NewParser(jwt.WithValidMethods([]string{alg.name}), jwt.WithIssuer("bench-issuer"),
				jwt.WithAudience("bench-api"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
			key := alg.key
			kf := func(*jwt.Token) (any, error) { return key, nil }
			b.ReportAllocs()
			for b.Loop() {
				var c jwt.RegisteredClaims
				if _, err := p.ParseWithClaims(s, &c, kf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
