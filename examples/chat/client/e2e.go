package client

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/nacl/box"
)

// ErrOpen means a sealed body could not be opened: it is not sealed,
// was tampered with, or was sealed for other keys.
var ErrOpen = errors.New("client: cannot open sealed body")

// Keys is a user's NaCl box key pair.
type Keys struct {
	Public, Private *[32]byte
}

// NewKeys generates a key pair.
func NewKeys() (Keys, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	return Keys{Public: pub, Private: priv}, err
}

// PublicBase64 is the public key as PUT /api/v1/keys takes it.
func (k Keys) PublicBase64() string { return base64.StdEncoding.EncodeToString(k.Public[:]) }

// ParsePublic decodes a public key published through the gateway.
func ParsePublic(s string) (*[32]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("client: public key %q: want 32 bytes in base64", s)
	}
	var k [32]byte
	copy(k[:], b)
	return &k, nil
}

// Seal encrypts plaintext from k to the peer (NaCl box: X25519,
// XSalsa20 and Poly1305) under a random nonce, and returns the body to
// send: base64 of nonce and ciphertext. The gateway sees only this.
func (k Keys) Seal(plaintext string, peer *[32]byte) (string, error) {
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	out := box.Seal(nonce[:], []byte(plaintext), &nonce, peer, k.Private)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a body sealed between k and peer, in either direction.
func (k Keys) Open(body string, peer *[32]byte) (string, error) {
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(b) < 24+box.Overhead {
		return "", ErrOpen
	}
	var nonce [24]byte
	copy(nonce[:], b[:24])
	out, ok := box.Open(nil, b[24:], &nonce, peer, k.Private)
	if !ok {
		return "", ErrOpen
	}
	return string(out), nil
}
