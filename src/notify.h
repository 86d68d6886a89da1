/* systemd's notify protocol (Type=notify): a datagram to $NOTIFY_SOCKET, no library needed. */
#ifndef RSTGUARD_NOTIFY_H
#define RSTGUARD_NOTIFY_H

/* Send a state string such as "READY=1" or "STOPPING=1". Does nothing outside systemd. */
void NOTIFY_Send(const char *state);

/* Tell systemd a reload is starting ("RELOADING=1" with MONOTONIC_USEC, for Type=notify-reload). */
void NOTIFY_Reloading(void);

#endif
