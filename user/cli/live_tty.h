/* The live view on a terminal: top-like, redrawn in place on the alternate
 * screen, single keys read without Enter. Used only when stdin and stdout
 * are terminals (and TERM is not "dumb"); otherwise the view prints its
 * reports one after another. */
#ifndef TM_CLI_LIVE_TTY_H
#define TM_CLI_LIVE_TTY_H

#include <termios.h>

struct live_tty {
	int on;
	struct termios saved;
};

/* 1 when the view can redraw in place. */
int live_tty_usable(void);
/* Enter the alternate screen and read keys one by one: 0, or -errno. */
int live_tty_start(struct live_tty *t);
/* Restore the terminal as it was (also after a failed or no start). */
void live_tty_stop(struct live_tty *t);
/* A key pressed since the last call, or -1. Never blocks. */
int live_tty_key(struct live_tty *t);
/* Replace the screen by text, cut to the terminal's height and width. */
void live_tty_show(struct live_tty *t, const char *text);

#endif
