import numpy as np
from scipy.ndimage import gaussian_filter
def nn_gauss(ts, sigma_scale=1/8, vsf=10):
    tmp = np.zeros(ts); c = [i // 2 for i in ts]; s = [i * sigma_scale for i in ts]
    tmp[tuple(c)] = 1
    g = gaussian_filter(tmp, s, 0, mode='constant', cval=0)
    g /= (np.max(g) / vsf)
    return g
def closed(ts, vsf=10):
    ax = [np.exp(-0.5 * ((np.arange(n) - n // 2) / (n / 8)) ** 2) for n in ts]
    return vsf * np.outer(ax[0], ax[1])
for ts in [(56, 40), (64, 64), (320, 256), (512, 512), (41, 57), (1024, 896)]:
    a = nn_gauss(ts); b = closed(ts)
    a16 = a.astype(np.float16); b16 = b.astype(np.float16)
    a32_16 = a.astype(np.float32).astype(np.float16)  # torch double->half may round via float
    print(ts, 'f64 rel', np.max(np.abs(a - b) / b), 'fp16 mismatches', int((a16 != b16).sum()),
          'via-f32 mismatches', int((a16 != a32_16).sum()), 'zeros', int((a16 == 0).sum()), 'min', float(a16.min()), 'max', float(a16.max()))
