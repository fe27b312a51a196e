package sim

import (
	"fmt"
	"time"
)

// Station is a service centre on an [Engine]: Servers identical servers of
// the given Speed sharing one FIFO queue. A job of work w takes w/Speed of
// virtual time on a server. With Poisson arrivals and exponential work it is
// the M/M/k queue of queueing theory; with one server, M/M/1.
//
// Stations are not safe for concurrent use (nothing on an Engine is).
type Station struct {
	e       *Engine
	servers int
	speed   float64

	busy     int
	queue    []job
	head     int
	inFlight int

	busyTime   time.Duration // server-time spent serving
	lastChange time.Duration
	completed  uint64
}

type job struct {
	work    time.Duration
	arrived time.Duration
	done    func(wait, total time.Duration)
}

// NewStation returns a station with the given number of servers, each
// processing work at speed (1 means work equals service time).
func NewStation(e *Engine, servers int, speed float64) (*Station, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: station needs an engine", ErrInvalid)
	}
	if servers < 1 {
		return nil, fmt.Errorf("%w: station needs at least one server, got %d", ErrInvalid, servers)
	}
	if !(speed > 0) || speed > 1e9 {
		return nil, fmt.Errorf("%w: station speed must be in (0, 1e9], got %v", ErrInvalid, speed)
	}
	return &Station{e: e, servers: servers, speed: speed}, nil
}

// Submit enqueues a job of the given work. When it completes, done (if not
// nil) is called with the time it waited in the queue and its total time in
// the station (wait plus service).
func (s *Station) Submit(work time.Duration, done func(wait, total time.Duration)) {
	s.inFlight++
	j := job{work: work, arrived: s.e.Now(), done: done}
	if s.busy < s.servers {
		s.start(j)
		return
	}
	s.queue = append(s.queue, j)
}

func (s *Station) start(j job) {
	s.account()
	s.busy++
	service := time.Duration(float64(j.work) / s.speed)
	wait := s.e.Now() - j.arrived
	s.e.Schedule(service, func() {
		s.account()
		s.busy--
		s.inFlight--
		s.completed++
		if s.head < len(s.queue) {
			next := s.queue[s.head]
			s.queue[s.head] = job{}
			s.head++
			if s.head == len(s.queue) {
				s.queue, s.head = s.queue[:0], 0
			}
			s.start(next)
		}
		if j.done != nil {
			j.done(wait, s.e.Now()-j.arrived)
		}
	})
}

func (s *Station) account() {
	now := s.e.Now()
	s.busyTime += time.Duration(s.busy) * (now - s.lastChange)
	s.lastChange = now
}

// InFlight returns the jobs in the station: queued plus in service.
func (s *Station) InFlight() int { return s.inFlight }

// Queued returns the jobs waiting for a server.
func (s *Station) Queued() int { return len(s.queue) - s.head }

// Completed returns the number of finished jobs.
func (s *Station) Completed() uint64 { return s.completed }

// Utilization returns the fraction of server capacity used since time 0, in
// [0, 1].
func (s *Station) Utilization() float64 {
	s.account()
	now := s.e.Now()
	if now == 0 {
		return 0
	}
	return float64(s.busyTime) / (float64(now) * float64(s.servers))
}

// Speed returns the station's speed; SetSpeed changes it for jobs that
// start from now on (a slowed or recovered backend).
func (s *Station) Speed() float64 { return s.speed }

// SetSpeed changes the speed for jobs started from now on.
func (s *Station) SetSpeed(speed float64) error {
	if !(speed > 0) || speed > 1e9 {
		return fmt.Errorf("%w: station speed must be in (0, 1e9], got %v", ErrInvalid, speed)
	}
	s.speed = speed
	return nil
}
