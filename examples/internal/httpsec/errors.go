package httpsec

import "errors"

var (
	// ErrInvalidConfig wraps every bad option of the package's constructors.
	ErrInvalidConfig = errors.New("httpsec: invalid configuration")
	// ErrInvalidToken wraps every token that fails verification (and every
	// request to issue one that would); errors.Is also finds the
	// golang-jwt error naming the failed check, such as jwt.ErrTokenExpired.
	ErrInvalidToken = errors.New("httpsec: invalid token")
	// ErrNoToken is returned by [Tokens.Subject] for a request that bears
	// no token.
	ErrNoToken = errors.New("httpsec: no bearer token")
)
