package service

import (
	"math"
	"slices"
	"time"
)

// Ranking orders the posts of a home page by a score instead of by time:
//
//	score = 2^(−age/HalfLife) × (1 + LikeWeight·ln(1+likes) + ReplyWeight·ln(1+replies))
//
// Recency decays exponentially, halving every HalfLife; engagement lifts a
// post with diminishing returns (the logarithm), so a post with many likes
// outranks a slightly newer one but not one a day newer. Ranking reorders
// the posts of each page; pages themselves follow the sequence cursor, so
// paging never skips or repeats a post. The zero value (HalfLife 0) keeps
// the chronological order, the default.
type Ranking struct {
	HalfLife    time.Duration
	LikeWeight  float64
	ReplyWeight float64
}

// Score returns p's score at now.
func (k Ranking) Score(p Post, now time.Time) float64 {
	age := max(0, now.Sub(p.Created).Seconds())
	decay := math.Exp2(-age / k.HalfLife.Seconds())
	return decay * (1 + k.LikeWeight*math.Log1p(float64(p.Likes)) + k.ReplyWeight*math.Log1p(float64(p.Replies)))
}

// order sorts posts by descending score at now; ties keep the newer first.
func (k Ranking) order(posts []Post, now time.Time) {
	if k.HalfLife <= 0 {
		return
	}
	slices.SortStableFunc(posts, func(a, b Post) int {
		sa, sb := k.Score(a, now), k.Score(b, now)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
}
