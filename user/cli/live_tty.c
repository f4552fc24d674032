/* The live view's terminal (live_tty.h). */
#include "cli/live_tty.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int live_tty_usable(void)
{
	const char *term = getenv("TERM");

	return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && term && *term &&
	       strcmp(term, "dumb") != 0;
}

int live_tty_start(struct live_tty *t)
{
	struct termios raw;

	t->on = 0;
	if (tcgetattr(STDIN_FILENO, &t->saved))
		return -errno;
	raw = t->saved;
	/* No echo, no line buffering; ^C still signals (ISIG kept). */
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw))
		return -errno;
	t->on = 1;
	fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, hide the cursor */
	fflush(stdout);
	return 0;
}

void live_tty_stop(struct live_tty *t)
{
	if (!t->on)
		return;
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->on = 0;
}

int live_tty_key(struct live_tty *t)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	unsigned char c;

	if (!t->on || poll(&p, 1, 0) <= 0 || read(STDIN_FILENO, &c, 1) != 1)
		return -1;
	return c;
}

void live_tty_show(struct live_tty *t, const char *text)
{
	struct winsize ws = { 0 };
	unsigned rows, cols, row = 0;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || !ws.ws_row)
		ws.ws_row = 24, ws.ws_col = 80;
	rows = ws.ws_row;
	cols = ws.ws_col ? ws.ws_col : 80;
	(void)t;
	fputs("\033[H", stdout);
	while (*text && row < rows) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);

		/* Cut long lines (bytes; file names are mostly ASCII) and
		 * clear what the previous screen left on the row. */
		fwrite(text, 1, len < cols ? len : cols, stdout);
		fputs(row + 1 < rows ? "\033[K\n" : "\033[K", stdout);
		row++;
		text += len + (nl != NULL);
	}
	fputs("\033[J", stdout); /* clear below */
	fflush(stdout);
}
