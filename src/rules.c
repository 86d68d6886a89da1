/* Queue rules: print them, or add and remove them in chain RSTGUARD of the raw table. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rules.h"

#define RULES_MAX_ARGS 24
#define RULES_TIMEOUT_S 15     /* an iptables run that takes longer is killed */
#define RULES_MAX_STALE 16     /* jumps of crashed runs removed at most */

/* "--queue-num N" or "--queue-balance N:M" for the configured queues, into buf. */
static void
queue_spec(const struct config *cfg, char *opt, size_t optlen, char *arg, size_t arglen, int nft)
{
	unsigned first = cfg->queue_num, last = cfg->queue_num + cfg->queue_count - 1u;

	if (cfg->queue_count > 1) {
		snprintf(opt, optlen, "--queue-balance");
		snprintf(arg, arglen, nft ? "%u-%u" : "%u:%u", first, last);
	} else {
		snprintf(opt, optlen, "--queue-num");
		snprintf(arg, arglen, "%u", first);
	}
}

void
RULES_Print(const struct config *cfg, const char *pin, FILE *out)
{
	static const char *const tools[] = { "iptables", "ip6tables" };
	char opt[32], arg[32], nftarg[32];

	queue_spec(cfg, opt, sizeof(opt), arg, sizeof(arg), 0);
	queue_spec(cfg, opt, sizeof(opt), nftarg, sizeof(nftarg), 1);
	fprintf(out, "# rstguard queue rules (queues %u..%u). --queue-bypass: with no daemon bound,\n"
		"# traffic passes. Raw PREROUTING: the queue sees packets before conntrack.\n",
		cfg->queue_num, cfg->queue_num + cfg->queue_count - 1u);
	fprintf(out, "\n# iptables / ip6tables\n");
	for (int i = 0; i < 2; i++)
		fprintf(out, "%s -t raw -A PREROUTING -p tcp -j NFQUEUE %s %s --queue-bypass\n",
			tools[i], opt, arg);
	fprintf(out, "\n# nft\n"
		"table inet rstguard {\n"
		"\tchain prerouting {\n"
		"\t\ttype filter hook prerouting priority raw; policy accept;\n"
		"\t\tmeta l4proto tcp queue num %s bypass\n"
		"\t}\n"
		"}\n", nftarg);
	if (pin == NULL)
		return;
	fprintf(out, "\n# with the fast path (--fast-path; the daemon pins the program before the rule\n"
		"# can be added, and the rule keeps its own reference to it)\n");
	for (int i = 0; i < 2; i++)
		fprintf(out, "%s -t raw -A PREROUTING -p tcp -m bpf --object-pinned %s -j NFQUEUE %s %s --queue-bypass\n",
			tools[i], pin, opt, arg);
	fprintf(out, "\n# nft has no match of its own for a pinned socket-filter program: use the\n"
		"# iptables form above (iptables-nft runs it through nft_compat)\n");
}

/* The first of the usual system directories holding tool, into path. */
static int
find_tool(const char *tool, char *path, size_t len)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, len, "%s/%s", dirs[i], tool);
		if (access(path, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Run argv (argv[0] a tool name) with stdin and stdout on /dev/null; stderr too when quiet.
 * Returns the exit status, or -1 when it could not run or was killed. Bounded in time. */
static int
run(char *const argv[], int quiet)
{
	char path[64];
	pid_t pid;
	int st;

	if (find_tool(argv[0], path, sizeof(path)) < 0) {
		if (!quiet)
			log_warnx("rules: %s not found", argv[0]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("rules: fork");
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);  /* the daemon blocks signals; the tool must not */
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			if (quiet)
				dup2(fd, 2);
		}
		execv(path, argv);
		_exit(127);
	}
	for (int i = 0; i < RULES_TIMEOUT_S * 100; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		struct timespec ts = { 0, 10 * 1000000L };

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	log_warnx("rules: %s did not finish within %d s", argv[0], RULES_TIMEOUT_S);
	return -1;
}

/* Remove the jump(s) and the chain of one family; quiet. */
static void
remove_family(const char *tool)
{
	char *del[] = { (char *)tool, "-w", "5", "-t", "raw", "-D", "PREROUTING", "-p", "tcp",
			"-j", RULES_CHAIN, NULL };
	char *flush[] = { (char *)tool, "-w", "5", "-t", "raw", "-F", RULES_CHAIN, NULL };
	char *drop[] = { (char *)tool, "-w", "5", "-t", "raw", "-X", RULES_CHAIN, NULL };

	for (int i = 0; i < RULES_MAX_STALE && run(del, 1) == 0; i++)
		;
	run(flush, 1);
	run(drop, 1);
}

/* Chain, its queue rule and the jump, for one family. */
static int
install_family(const char *tool, const struct config *cfg, const char *pin)
{
	char opt[32], arg[32];
	char *newc[] = { (char *)tool, "-w", "5", "-t", "raw", "-N", RULES_CHAIN, NULL };
	char *jump[] = { (char *)tool, "-w", "5", "-t", "raw", "-I", "PREROUTING", "1", "-p", "tcp",
			 "-j", RULES_CHAIN, NULL };
	char *rule[RULES_MAX_ARGS];
	int n = 0;

	queue_spec(cfg, opt, sizeof(opt), arg, sizeof(arg), 0);
	rule[n++] = (char *)tool;
	rule[n++] = "-w";
	rule[n++] = "5";
	rule[n++] = "-t";
	rule[n++] = "raw";
	rule[n++] = "-A";
	rule[n++] = RULES_CHAIN;
	rule[n++] = "-p";
	rule[n++] = "tcp";
	if (pin) {
		rule[n++] = "-m";
		rule[n++] = "bpf";
		rule[n++] = "--object-pinned";
		rule[n++] = (char *)pin;
	}
	rule[n++] = "-j";
	rule[n++] = "NFQUEUE";
	rule[n++] = opt;
	rule[n++] = arg;
	rule[n++] = "--queue-bypass";
	rule[n] = NULL;

	remove_family(tool);   /* a crashed run's chain is replaced, not added to */
	if (run(newc, 0) != 0 || run(rule, 0) != 0 || run(jump, 0) != 0) {
		log_warnx("rules: could not add the %s rules (chain %s of the raw table)", tool, RULES_CHAIN);
		return -1;
	}
	return 0;
}

int
RULES_Install(const struct config *cfg, const char *pin)
{
	if (install_family("iptables", cfg, pin) < 0 || install_family("ip6tables", cfg, pin) < 0) {
		RULES_Remove();
		return -1;
	}
	log_info("rules: added chain %s (raw PREROUTING, iptables and ip6tables)%s", RULES_CHAIN,
		 pin ? " with the fast-path match" : "");
	return 0;
}

void
RULES_Remove(void)
{
	remove_family("iptables");
	remove_family("ip6tables");
}
