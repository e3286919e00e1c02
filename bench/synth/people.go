package synth

import (
	"strconv"
)

// Leads, accounts and anonymous visitors are not stored: every attribute is
// derived from a hash of the seed and the index, so a population of
// millions costs no memory and the same seed always yields the same people.

// Hash salts, one per derived attribute family.
const (
	saltLead uint64 = iota + 1
	saltAccount
	saltHotAccount
	saltAnon
	saltLeadAnon
	saltHot
)

// mix returns a well-mixed 64-bit hash of seed, salt and i (SplitMix64
// finaliser over a combination of the three).
func mix(seed int64, salt, i uint64) uint64 {
	z := uint64(seed)*0x9e3779b97f4a7c15 ^ salt*0xbf58476d1ce4e5b9 ^ i*0x94d049bb133111eb
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// pick returns one element of list chosen by the bits of h.
func pick[T any](list []T, h uint64) T { return list[h%uint64(len(list))] }

var (
	firstNames = []string{
		"alex", "amira", "ana", "ben", "carla", "chen", "dana", "david", "elena", "emma",
		"farid", "grace", "hana", "ivan", "jack", "jana", "kai", "laura", "leo", "lina",
		"lucas", "maria", "mateo", "mia", "nina", "noah", "olga", "omar", "paul", "priya",
		"rafael", "rosa", "sam", "sara", "sofia", "tom", "uma", "victor", "yara", "zoe",
	}
	lastNames = []string{
		"adams", "baker", "berg", "costa", "dubois", "evans", "fischer", "garcia", "haas", "ito",
		"jensen", "kaur", "kim", "kowalski", "lee", "lopez", "martin", "meyer", "murphy", "nguyen",
		"novak", "okafor", "olsen", "patel", "petrov", "rossi", "santos", "schmidt", "silva", "smith",
		"suzuki", "tan", "walsh", "weber", "white", "wong", "young", "zhang",
	}
	// Titles of ordinary leads: a realistic spread from students to the
	// C-suite, weighted towards individual contributors.
	coldTitles = []string{
		"Marketing Manager", "Marketing Manager", "Software Engineer", "Software Engineer",
		"Sales Representative", "Account Executive", "Business Analyst", "Data Analyst",
		"Consultant", "Product Manager", "Marketing Specialist", "Content Writer",
		"Student", "Intern", "Operations Manager", "Customer Success Manager",
		"Director of Marketing", "Head of Sales", "VP Engineering", "CEO", "Founder",
	}
	// Titles of hot leads: people who own a budget.
	hotTitles = []string{
		"VP Marketing", "Director of Demand Generation", "Head of Growth", "CMO",
		"Director of Sales Operations", "VP Revenue Operations", "Head of Marketing Operations",
		"Director of Marketing", "CRO", "VP Sales",
	}
	industries = []string{
		"Software", "SaaS", "Information Technology", "Financial Services", "Fintech",
		"Manufacturing", "Retail", "Healthcare", "Education", "Logistics", "Media",
		"Professional Services", "Real Estate", "Non-Profit", "Government",
	}
	countries = []string{
		"US", "US", "US", "GB", "DE", "FR", "NL", "CA", "AU", "IE",
		"ES", "IT", "SE", "PL", "IN", "BR", "JP", "SG", "MX", "ZA",
	}
	companyWords = []string{
		"acme", "globex", "initech", "umbrella", "hooli", "vandelay", "stark", "wayne",
		"tyrell", "wonka", "soylent", "cyberdyne", "oscorp", "aperture", "monarch", "nakatomi",
		"gringotts", "pied-piper", "dunder", "bluth", "massive", "northwind", "contoso", "fabrikam",
		"tailspin", "woodgrove", "litware", "adatum", "proseware", "lucerne", "margie", "wingtip",
	}
	companySuffixes = []string{
		"", "-labs", "-systems", "-analytics", "-cloud", "-data", "-group", "-digital",
		"-software", "-health", "-logistics", "-media", "-capital", "-works", "-ai", "-io",
	}
	tlds = []string{".com", ".com", ".io", ".de", ".co.uk", ".fr", ".nl", ".com.au"}
	// Company sizes in employees, as enrichment tools report them: many
	// small companies, fewer large ones.
	companySizes = []int{
		3, 8, 15, 25, 40, 60, 90, 120, 150, 180,
		220, 300, 450, 800, 1200, 2500, 4000, 7500, 15000, 60000,
	}
)

// account is a company derived from its index. Its domain is
// word+suffix[+gen]+tld, unique per index.
type account struct {
	word, suffix, tld string
	gen               uint64 // 0, or a number that keeps the domain unique
	size              int
	industry          string
	country           string
}

// appendDomain appends a's e-mail domain, e.g. "pied-piper-labs.io".
func (a *account) appendDomain(dst []byte) []byte {
	dst = append(dst, a.word...)
	dst = append(dst, a.suffix...)
	if a.gen > 0 {
		dst = strconv.AppendUint(dst, a.gen+1, 10)
	}
	return append(dst, a.tld...)
}

// appendName appends a's display name: "pied-piper" + "-labs" gives
// "Pied Piper Labs".
func (a *account) appendName(dst []byte) []byte {
	up := true
	for _, s := range [2]string{a.word, a.suffix} {
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '-':
				dst = append(dst, ' ')
				up = true
			case up && 'a' <= c && c <= 'z':
				dst = append(dst, c-'a'+'A')
				up = false
			default:
				dst = append(dst, c)
				up = false
			}
		}
	}
	if a.gen > 0 {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, a.gen+1, 10)
	}
	return dst
}

// goodFit reports whether a is in the default model's sweet spot: mid-market
// or enterprise in a target industry. Hot leads work at such companies.
func (a *account) goodFit() bool {
	if a.size < 200 {
		return false
	}
	switch a.industry {
	case "Software", "SaaS", "Information Technology", "Financial Services", "Fintech":
		return true
	}
	return false
}

// population derives people and companies from the seed.
type population struct {
	seed      int64
	leads     int
	accounts  int
	anons     int
	idWidth   int
	accPermA  uint64 // affine permutation of account indices, for unique domains
	accPermB  uint64
	leadPermA uint64 // affine permutation mapping popularity rank to lead index
	leadPermB uint64
}

func newPopulation(seed int64, leads int) population {
	p := population{seed: seed, leads: leads, idWidth: 6}
	p.accounts = max(1, leads/4)
	p.anons = max(1, leads/2)
	if w := len(strconv.Itoa(leads - 1)); w > p.idWidth {
		p.idWidth = w
	}
	p.accPermA, p.accPermB = affine(uint64(p.accounts), mix(seed, saltAccount, 1<<62))
	p.leadPermA, p.leadPermB = affine(uint64(leads), mix(seed, saltLead, 1<<62))
	return p
}

// affine returns a, b such that i -> (a*i + b) mod n is a permutation of
// [0, n): a is chosen coprime with n.
func affine(n, h uint64) (a, b uint64) {
	if n <= 1 {
		return 1, 0
	}
	a = h%n | 1
	for gcd(a, n) != 1 {
		a = (a + 2) % n
		if a == 0 {
			a = 1
		}
	}
	return a, (h >> 32) % n
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// permute applies the affine permutation (a, b) to i in [0, n), without
// overflow for any n below 2^32 and i below n.
func permute(i, a, b, n uint64) uint64 {
	if n <= 1 {
		return 0
	}
	hi := mulmod(a, i, n)
	return (hi + b) % n
}

// mulmod returns a*b mod n without overflow.
func mulmod(a, b, n uint64) uint64 {
	if a < 1<<32 && b < 1<<32 {
		return a * b % n
	}
	var r uint64
	a %= n
	for b > 0 {
		if b&1 == 1 {
			r = (r + a) % n
		}
		a = (a << 1) % n
		b >>= 1
	}
	return r
}

// appendLeadID appends "lead-000123" for lead index i.
func (p *population) appendLeadID(dst []byte, i int) []byte {
	dst = append(dst, "lead-"...)
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], int64(i), 10)
	for n := len(s); n < p.idWidth; n++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// leadID returns the id of lead i.
func (p *population) leadID(i int) string { return string(p.appendLeadID(nil, i)) }

// appendAnonID appends the anonymous id of visitor i: "anon-" and 16 hex
// digits.
func appendAnonID(dst []byte, h uint64) []byte {
	dst = append(dst, "anon-"...)
	return appendHex(dst, h, 16)
}

const hexDigits = "0123456789abcdef"

// appendHex appends the low n hex digits of v, most significant first.
func appendHex(dst []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, hexDigits[(v>>(4*uint(i)))&0xf])
	}
	return dst
}

// account derives account i.
func (p *population) account(i int) account {
	c := permute(uint64(i), p.accPermA, p.accPermB, uint64(p.accounts))
	nw, ns := uint64(len(companyWords)), uint64(len(companySuffixes))
	h := mix(p.seed, saltAccount, uint64(i))
	gen := c / (nw * ns)
	return account{
		word:     companyWords[c%nw],
		suffix:   companySuffixes[(c/nw)%ns],
		gen:      gen,
		tld:      tlds[(h>>40)%uint64(len(tlds))],
		size:     pick(companySizes, h),
		industry: pick(industries, h>>8),
		country:  pick(countries, h>>16),
	}
}

// lead is a person derived from its index.
type lead struct {
	first, last string
	title       string
	account     int
}

// lead derives lead i; hot leads get a senior title and a good-fit account.
func (p *population) lead(i int, hot bool) lead {
	h := mix(p.seed, saltLead, uint64(i))
	l := lead{
		first:   pick(firstNames, h),
		last:    pick(lastNames, h>>8),
		account: int((h >> 24) % uint64(p.accounts)),
	}
	if !hot {
		l.title = pick(coldTitles, h>>16)
		return l
	}
	l.title = pick(hotTitles, h>>16)
	for k := uint64(0); k < 64; k++ {
		c := int(mix(p.seed, saltHotAccount, uint64(i)<<8|k) % uint64(p.accounts))
		if a := p.account(c); a.goodFit() {
			l.account = c
			break
		}
	}
	return l
}
