/* Unit tests of the enforce policy: what enforce mode would drop (forged RSTs only, never a
 * genuine or eviction one; protect, exempt networks and ports), and detection-only mode never
 * changing a verdict. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cidr.h"
#include "config.h"
#include "packet.h"
#include "pktbuild.h"
#include "policy.h"
#include "rst.h"
#include "tap.h"
#include "tmpfile.h"

/* A parsed RST from src:sport to dst:dport (numeric addresses of one family). */
static struct pkt
mkpkt(const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
	int family = strchr(src, ':') ? AF_INET6 : AF_INET;
	struct pb_spec s = PB_Default(family);
	uint8_t buf[256];
	struct pkt p;
	size_t len;

	s.src = src;
	s.dst = dst;
	s.sport = sport;
	s.dport = dport;
	s.flags = TCPF_RST | TCPF_ACK;
	s.seq = 1000;
	s.ack = 2000;
	len = PB_Build(buf, sizeof(buf), &s);
	if (len == 0 || PKT_Parse(buf, (uint32_t)len, (uint32_t)len, &p) != PKT_TCP) {
		fprintf(stderr, "cannot build %s -> %s\n", src, dst);
		exit(99);
	}
	p.payload = NULL;   /* pointed into buf */
	return p;
}

static struct rst_result
mkres(enum rst_cause cause, int forged)
{
	struct rst_result r;

	memset(&r, 0, sizeof(r));
	r.cause = cause;
	r.apparent = cause;
	r.forged = forged;
	r.score = forged ? 100 : 0;
	return r;
}

/* Add a network to a policy list (the test's own networks are always valid). */
static void
add_net(struct cidr *list, unsigned *n, const char *s)
{
	if (*n >= CFG_POLICY_MAX_NETS || CIDR_Parse(s, &list[*n]) != CIDR_OK) {
		fprintf(stderr, "bad test network %s\n", s);
		exit(99);
	}
	(*n)++;
}

/* A policy with every action set to drop: only injected and invalid_seq may ever be dropped. */
static void
test_genuine_never_dropped(void)
{
	struct config cfg;
	struct pkt p = mkpkt("198.18.1.2", "198.18.3.2", 80, 40000);
	struct pkt p6 = mkpkt("2001:db8:1::2", "2001:db8:3::2", 443, 50000);

	CFG_SetDefaults(&cfg);
	cfg.mode = RG_MODE_ENFORCE;
	cfg.policy.drop_injected = 1;
	cfg.policy.drop_invalid_seq = 1;
	for (int c = 0; c < RST_CAUSE_MAX; c++) {
		int droppable = c == RST_CAUSE_INJECTED || c == RST_CAUSE_INVALID_SEQ;

		for (int forged = 0; forged <= 1; forged++) {
			struct rst_result r = mkres((enum rst_cause)c, forged);

			if (droppable)
				continue;
			TAP_OK(POLICY_WouldDo(&cfg, &p, &r) == RG_ACCEPT &&
			    POLICY_Decide(&cfg, &p, &r) == RG_ACCEPT &&
			    POLICY_WouldDo(&cfg, &p6, &r) == RG_ACCEPT,
			    "%s (forged flag %d) is never dropped", RST_CauseName((enum rst_cause)c),
			    forged);
		}
	}
	{
		struct rst_result r = mkres(RST_CAUSE_MAX, 1);

		TAP_OK(POLICY_WouldDo(&cfg, &p, &r) == RG_ACCEPT, "an unknown cause is accepted");
	}
	CFG_Free(&cfg);
}

static void
test_would_do(void)
{
	struct config cfg;
	struct pkt p = mkpkt("198.18.1.2", "198.18.3.2", 80, 40000);
	struct pkt p6 = mkpkt("2001:db8:1::2", "2001:db8:3::2", 443, 50000);
	struct rst_result inj = mkres(RST_CAUSE_INJECTED, 1);
	struct rst_result inv = mkres(RST_CAUSE_INVALID_SEQ, 0);
	struct rst_result unjudged = mkres(RST_CAUSE_INJECTED, 0);

	CFG_SetDefaults(&cfg);
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_DROP, "defaults: forged IPv4 RST would be dropped");
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_DROP, "defaults: forged IPv6 RST would be dropped");
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inv) == RG_ACCEPT, "defaults: invalid_seq is accepted");
	TAP_OK(POLICY_WouldDo(&cfg, &p, &unjudged) == RG_ACCEPT,
	    "cause injected without the forged judgement is accepted");
	{
		struct pkt rev = mkpkt("198.18.3.2", "198.18.1.2", 40000, 80);

		TAP_OK(POLICY_WouldDo(&cfg, &rev, &inj) == RG_DROP,
		    "defaults: both directions are protected");
	}

	cfg.policy.drop_invalid_seq = 1;
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inv) == RG_DROP, "invalid_seq = drop drops it");
	cfg.policy.drop_injected = 0;
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_ACCEPT, "injected = accept accepts it");
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inv) == RG_DROP, "... independently of invalid_seq");
	cfg.policy.drop_injected = 1;
	cfg.policy.drop_invalid_seq = 0;

	/* protect: only the destination counts. */
	add_net(cfg.policy.protect, &cfg.policy.n_protect, "198.18.3.0/24");
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_DROP, "protect: destination inside, dropped");
	{
		struct pkt rev = mkpkt("198.18.3.2", "198.18.1.2", 40000, 80);
		struct pkt out = mkpkt("198.18.1.2", "198.18.4.2", 80, 40000);

		TAP_OK(POLICY_WouldDo(&cfg, &rev, &inj) == RG_ACCEPT,
		    "protect: source inside, destination outside, accepted");
		TAP_OK(POLICY_WouldDo(&cfg, &out, &inj) == RG_ACCEPT,
		    "protect: destination just outside, accepted");
	}
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_ACCEPT,
	    "protect with IPv4 networks only: an IPv6 RST is accepted");
	add_net(cfg.policy.protect, &cfg.policy.n_protect, "2001:db8:3::/48");
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_DROP, "protect: IPv6 destination inside");
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_DROP, "protect: the IPv4 entry still matches");
	cfg.policy.drop_invalid_seq = 1;
	{
		struct pkt out = mkpkt("198.18.1.2", "198.18.4.2", 80, 40000);

		TAP_OK(POLICY_WouldDo(&cfg, &p, &inv) == RG_DROP &&
		    POLICY_WouldDo(&cfg, &out, &inv) == RG_ACCEPT, "protect applies to invalid_seq too");
	}
	cfg.policy.drop_invalid_seq = 0;
	cfg.policy.n_protect = 0;

	/* exempt networks: source or destination. */
	add_net(cfg.policy.exempt, &cfg.policy.n_exempt, "198.18.1.2");
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_ACCEPT, "exempt: source inside, accepted");
	{
		struct pkt rev = mkpkt("198.18.3.2", "198.18.1.2", 40000, 80);
		struct pkt other = mkpkt("198.18.1.3", "198.18.3.2", 80, 40000);

		TAP_OK(POLICY_WouldDo(&cfg, &rev, &inj) == RG_ACCEPT,
		    "exempt: destination inside, accepted");
		TAP_OK(POLICY_WouldDo(&cfg, &other, &inj) == RG_DROP,
		    "exempt: the next address is not exempt");
	}
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_DROP, "exempt IPv4 host: IPv6 still dropped");
	add_net(cfg.policy.exempt, &cfg.policy.n_exempt, "2001:db8:3::/64");
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_ACCEPT, "exempt: IPv6 destination inside");
	/* exempt wins over protect */
	add_net(cfg.policy.protect, &cfg.policy.n_protect, "2001:db8::/32");
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_ACCEPT, "exempt wins over protect");
	cfg.policy.n_protect = 0;
	cfg.policy.n_exempt = 0;

	/* exempt ports: source or destination. */
	cfg.policy.exempt_ports[cfg.policy.n_exempt_ports++] = 22;
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_DROP, "exempt port 22: port 80 RST dropped");
	cfg.policy.exempt_ports[cfg.policy.n_exempt_ports++] = 80;
	TAP_OK(POLICY_WouldDo(&cfg, &p, &inj) == RG_ACCEPT, "exempt port 80: source port, accepted");
	{
		struct pkt rev = mkpkt("198.18.3.2", "198.18.1.2", 40000, 80);

		TAP_OK(POLICY_WouldDo(&cfg, &rev, &inj) == RG_ACCEPT,
		    "exempt port 80: destination port, accepted");
	}
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_DROP, "exempt port 80: port 443 RST dropped");
	cfg.policy.exempt_ports[cfg.policy.n_exempt_ports++] = 50000;
	TAP_OK(POLICY_WouldDo(&cfg, &p6, &inj) == RG_ACCEPT, "exempt port 50000: IPv6 destination port");
	CFG_Free(&cfg);
}

static void
test_decide(void)
{
	struct config cfg;
	struct pkt p = mkpkt("198.18.1.2", "198.18.3.2", 80, 40000);

	CFG_SetDefaults(&cfg);
	cfg.policy.drop_invalid_seq = 1;
	TAP_OK(cfg.mode == RG_MODE_DETECT, "default mode is detect");
	for (int c = 0; c < RST_CAUSE_MAX; c++) {
		struct rst_result r = mkres((enum rst_cause)c, c == RST_CAUSE_INJECTED);
		enum rg_verdict would = POLICY_WouldDo(&cfg, &p, &r);

		cfg.mode = RG_MODE_DETECT;
		TAP_OK(POLICY_Decide(&cfg, &p, &r) == RG_ACCEPT,
		    "detect: %s accepted (enforce would %s)", RST_CauseName((enum rst_cause)c),
		    POLICY_VerdictName(would));
		cfg.mode = RG_MODE_ENFORCE;
		TAP_OK(POLICY_Decide(&cfg, &p, &r) == would, "enforce: %s gets what WouldDo says",
		    RST_CauseName((enum rst_cause)c));
	}
	TAP_EQ_S(POLICY_VerdictName(RG_DROP), "drop", "verdict name drop");
	TAP_EQ_S(POLICY_VerdictName(RG_ACCEPT), "accept", "verdict name accept");
	CFG_Free(&cfg);
}

/* Load a configuration text from a temporary file. */
static int
load(const char *text, struct config *cfg, struct config_errors *errs)
{
	char path[64];
	int rc;

	tmp_write(path, sizeof(path), "rgpol", text);
	rc = CFG_Load(cfg, path, errs);
	unlink(path);
	return rc;
}

/* The configuration accepts an action exactly for the droppable causes, by the names events use,
 * and refuses every other cause by name (not as an unknown key). */
static void
test_config_causes(void)
{
	for (int c = 0; c < RST_CAUSE_MAX; c++) {
		const char *name = RST_CauseName((enum rst_cause)c);
		int droppable = c == RST_CAUSE_INJECTED || c == RST_CAUSE_INVALID_SEQ;
		struct config cfg;
		struct config_errors errs = { 0 };
		char text[128], want[128];
		int rc;

		snprintf(text, sizeof(text), "policy = { actions = { %s = \"drop\"; }; };\n", name);
		rc = load(text, &cfg, &errs);
		if (droppable) {
			TAP_OK(rc == 0 && errs.count == 0, "policy.actions.%s may be set", name);
		} else {
			snprintf(want, sizeof(want), "policy.actions.%s: ", name);
			TAP_OK(rc == -1 && errs.count == 1 && errs.items[0].line == 1 &&
			    strncmp(errs.items[0].message, want, strlen(want)) == 0 &&
			    strstr(errs.items[0].message, "never dropped") != NULL,
			    "policy.actions.%s is refused: %s", name,
			    errs.count ? errs.items[0].message : "(no error)");
		}
		CFG_FreeErrors(&errs);
		CFG_Free(&cfg);
	}
}

/* From a file to a verdict: the loaded lists drive POLICY_WouldDo. */
static void
test_config_to_verdict(void)
{
	struct config cfg;
	struct config_errors errs = { 0 };
	struct rst_result inj = mkres(RST_CAUSE_INJECTED, 1);
	struct pkt in = mkpkt("198.18.1.2", "198.18.3.2", 80, 40000);
	struct pkt out = mkpkt("198.18.3.2", "198.18.1.2", 40000, 80);
	struct pkt ex = mkpkt("198.18.1.2", "198.18.3.9", 80, 40000);
	struct pkt ssh = mkpkt("198.18.1.2", "198.18.3.2", 22, 40001);
	struct pkt v6 = mkpkt("2001:db8:1::2", "2001:db8:3::2", 443, 50000);
	int rc;

	rc = load("mode = \"enforce\";\n"
	    "policy = {\n"
	    "  protect = [ \"198.18.3.0/24\", \"2001:db8:3::/48\" ];\n"
	    "  exempt = [ \"198.18.3.9\" ];\n"
	    "  exempt_ports = [ 22 ];\n"
	    "};\n", &cfg, &errs);
	TAP_OK(rc == 0 && errs.count == 0, "policy file loads");
	TAP_OK(POLICY_Decide(&cfg, &in, &inj) == RG_DROP, "file: toward the protected network, dropped");
	TAP_OK(POLICY_Decide(&cfg, &out, &inj) == RG_ACCEPT, "file: away from it, accepted");
	TAP_OK(POLICY_Decide(&cfg, &ex, &inj) == RG_ACCEPT, "file: exempt host, accepted");
	TAP_OK(POLICY_Decide(&cfg, &ssh, &inj) == RG_ACCEPT, "file: exempt port, accepted");
	TAP_OK(POLICY_Decide(&cfg, &v6, &inj) == RG_DROP, "file: IPv6 protected network, dropped");
	{
		struct config copy;

		CFG_Copy(&copy, &cfg);
		CFG_Free(&cfg);
		TAP_OK(POLICY_Decide(&copy, &in, &inj) == RG_DROP &&
		    POLICY_Decide(&copy, &out, &inj) == RG_ACCEPT &&
		    POLICY_Decide(&copy, &ssh, &inj) == RG_ACCEPT, "a copy decides the same");
		copy.mode = RG_MODE_DETECT;
		TAP_OK(POLICY_Decide(&copy, &in, &inj) == RG_ACCEPT &&
		    POLICY_WouldDo(&copy, &in, &inj) == RG_DROP,
		    "detect: accepted, while enforce would drop");
		CFG_Free(&copy);
	}
	CFG_FreeErrors(&errs);
}

int
main(void)
{
	test_genuine_never_dropped();
	test_would_do();
	test_decide();
	test_config_causes();
	test_config_to_verdict();
	return tap_done();
}
