// Package lockdown is the locked-down mode of the example programs that run
// a consensus cluster (raftkv, discovery): demonstration certificates
// ([WriteCerts]) and the loading of a node's mutual TLS and role table
// ([Load]), for the guide's "Security Considerations" (TLS in transit,
// authentication, role-based authorization).
package lockdown

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"

	"github.com/sysdesign-go/sysdesign/consensus"
)

// Load returns a node's mutual-TLS configuration from its PEM certificate,
// key and CA files (nil when all three are empty; an error naming what is
// missing when only some are given) and its role table from a JSON file of
// consensus.User (nil when usersFile is empty).
func Load(certFile, keyFile, caFile, usersFile string) (*tls.Config, *consensus.Auth, error) {
	var conf *tls.Config
	if certFile != "" || keyFile != "" || caFile != "" {
		var err error
		if conf, err = consensus.MutualTLS(certFile, keyFile, caFile); err != nil {
			return nil, nil, err
		}
	}
	if usersFile == "" {
		return conf, nil, nil
	}
	raw, err := os.ReadFile(usersFile)
	if err != nil {
		return nil, nil, err
	}
	var users []consensus.User
	if err := json.Unmarshal(raw, &users); err != nil {
		return nil, nil, fmt.Errorf("users file %s: %w", usersFile, err)
	}
	auth, err := consensus.NewAuth(users...)
	if err != nil {
		return nil, nil, fmt.Errorf("users file %s: %w", usersFile, err)
	}
	return conf, auth, nil
}
