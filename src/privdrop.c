/* Dropping root with libcap-ng: capng_change_id sets PR_SET_KEEPCAPS, changes the ids and then
 * applies the capability sets prepared here, in the order the kernel requires. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <cap-ng.h>
#include <linux/capability.h>

#include "log.h"
#include "privdrop.h"

int
PRIV_Lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_warnx("unknown user %s", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
PRIV_Drop(uid_t uid, gid_t gid)
{
	int rc;

	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, (capng_type_t)(CAPNG_EFFECTIVE | CAPNG_PERMITTED),
			  CAP_NET_ADMIN, CAP_NET_RAW, -1) != 0) {
		log_warnx("privileges: cannot prepare the capability sets");
		return -1;
	}
	rc = capng_change_id((int)uid, (int)gid, (capng_flags_t)(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING));
	if (rc != 0) {
		log_warnx("privileges: cannot change to uid %ld gid %ld (libcap-ng error %d)",
			  (long)uid, (long)gid, rc);
		return -1;
	}
	/* Proof, not trust: root is gone for good and the two capabilities are there. */
	if (setuid(0) == 0 || geteuid() != uid || getegid() != gid ||
	    capng_get_caps_process() != 0 || !capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN) ||
	    !capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_RAW)) {
		log_warnx("privileges: the drop to uid %ld did not take effect as expected", (long)uid);
		return -1;
	}
	log_info("privileges: running as uid %ld gid %ld with CAP_NET_ADMIN and CAP_NET_RAW only",
		 (long)uid, (long)gid);
	return 0;
}
