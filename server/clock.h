/* clock.h: the daemon's two clocks: monotonic seconds for durations and
 * timeouts, wall-clock seconds for what is shown to users (created,
 * started, finished).
 * Not for: anything that must survive a restart (wall time may jump). */
#ifndef SRV_CLOCK_H
#define SRV_CLOCK_H

/* Monotonic seconds. */
double srv_now(void);
/* Wall-clock seconds since the epoch. */
double srv_wall(void);

#endif
