# The table of table_log.h (benchmarks/cycles/elementary.c): z in [0.6875, 1.375) in 128
# intervals; invc = 1/c at the centre c (1 exactly beside z = 1), logc = -log(invc) from mpmath.
# table for a division-free log: z in [OFF, 2 OFF), OFF = 0x3fe6000000000000 (0.6875), N = 128 intervals;
# invc = 1/c rounded to a double with the low 52-? bits... ; logc = -log(invc) in double (mpmath)
import struct

import mpmath

mpmath.mp.prec = 200
N=128; OFF=0x3fe6000000000000
def f2b(x): return struct.unpack('<Q', struct.pack('<d', x))[0]
def b2f(b): return struct.unpack('<d', struct.pack('<Q', b))[0]
inv=[];lg=[]
for i in range(N):
    lo = b2f(OFF + (i<<45)) if True else 0
    # interval i of tmp = ix - OFF: bits 45..51 = i, exponent field 0 or (for the upper part) ...
    tmp_lo = i<<45; tmp_hi=(i+1)<<45
    # z = asdouble(ix - (tmp & 0xfff<<52)) where tmp>>52 == 0 for z in [OFF, 2*OFF)
    zlo=b2f(OFF+tmp_lo); zhi=b2f(OFF+tmp_hi)
    if zlo >= 1.0 - 1e-12 and False: pass
    c = (mpmath.mpf(zlo)+mpmath.mpf(zhi))/2
    ic = float(1/c)
    # the two intervals next to 1 take c = 1 exactly: log c = 0 and r = z - 1 exact
    if abs(zlo-1.0)<1e-15 or abs(zhi-1.0)<1e-15: ic = 1.0
    inv.append(ic); lg.append(float(-mpmath.log(mpmath.mpf(ic))))
print("static const double KL_LOG_INVC[128] = {" + ", ".join(x.hex() for x in inv) + "};")
print("static const double KL_LOG_LOGC[128] = {" + ", ".join(x.hex() for x in lg) + "};")
