package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
)

// Code generation — the guide, URL Shortener, "URL Generation: Hash-based
// vs counter-based".
//
// Counter-based ([StrategyCounter]): every code is the base62 form of a
// unique ID. IDs come from a block allocator: an instance reserves
// BlockSize IDs with one durable increment and hands them out from memory,
// so instances never coordinate per request, codes are as short as
// possible (7 characters cover 3.5 trillion URLs) and never collide with
// each other. Costs: a crash wastes the rest of a block (gaps, not
// duplicates), and plain sequential codes are enumerable — so the ID is
// scrambled by a bijection of [0, 62^7) before encoding, which hides the
// order without risking a collision.
//
// Hash-based ([StrategyHash]): the code is a truncated SHA-256 of the URL.
// No shared counter at all, and the same URL always yields the same code
// (natural de-duplication). Costs: truncation collides (by the birthday
// bound, 7 base62 characters give a 50% chance of some collision after
// ~1.9 million URLs), so every create is a conditional write and a clash
// with another URL retries with a salted hash; codes are longer for the
// same safety margin.

// Code-generation strategies.
const (
	StrategyCounter = "counter"
	StrategyHash    = "hash"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// codeSpace is 62^7: counter IDs below it become exactly 7 characters.
const codeSpace = 3_521_614_606_208

// scrambleMul is odd and not a multiple of 31, hence coprime to 62^7 =
// 2^7·31^7, so x ↦ x·scrambleMul mod 62^7 is a bijection.
const scrambleMul = 2_654_435_761

// base62 encodes x, left-padded with '0' to width.
func base62(x uint64, width int) string {
	var buf [16]byte
	i := len(buf)
	for x > 0 || i > len(buf)-width {
		i--
		buf[i] = alphabet[x%62]
		x /= 62
	}
	return string(buf[i:])
}

// counterCode returns the code of ID id.
func counterCode(id uint64) string {
	if id < codeSpace {
		hi, lo := bits.Mul64(id, scrambleMul)
		return base62(bits.Rem64(hi, lo, codeSpace), 7)
	}
	return base62(id, 8)
}

// hashCode returns the hash-based code of url for the given attempt (0
// first, then salted retries after collisions).
func hashCode(url string, attempt, length int) string {
	h := sha256.New()
	h.Write([]byte(url))
	if attempt > 0 {
		h.Write([]byte("#" + strconv.Itoa(attempt)))
	}
	sum := h.Sum(nil)
	x := binary.BigEndian.Uint64(sum[:8])
	s := base62(x, 11)
	return s[len(s)-length:]
}

// blockAllocator hands out IDs from blocks reserved in the store.
type blockAllocator struct {
	reserve func(ctx context.Context, n uint64) (uint64, error)
	size    uint64

	mu        sync.Mutex
	next, end uint64 // guarded by mu: the unused part of the current block
}

// Next returns an unused ID, reserving a new block when the current one is
// spent. The lock is held across the reservation, so concurrent callers
// wait for one block instead of each reserving their own.
func (a *blockAllocator) Next(ctx context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.end {
		start, err := a.reserve(ctx, a.size)
		if err != nil {
			return 0, fmt.Errorf("reserving an ID block: %w", err)
		}
		a.next, a.end = start, start+a.size
	}
	id := a.next
	a.next++
	return id, nil
}
