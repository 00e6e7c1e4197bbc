package topology

import (
	"fmt"
	"regexp"
)

// unitRe is a systemd unit name of a kind an image may mask.
var unitRe = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]{1,200}\.(service|socket|timer|path|mount|target)$`)

func validateUnmask(at reporter, path string, units []string) {
	seen := map[string]bool{}
	for i, u := range units {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !unitRe.MatchString(u):
			at(p, "%q: want a systemd unit name, such as getty@tty1.service or fstrim.timer", Cut(u))
		case seen[u]:
			at(p, "%q is listed twice", u)
		}
		seen[u] = true
	}
}
