import numpy as np
def steps(image_size, tile_size, s=0.5):
    t = [i * s for i in tile_size]
    n = [int(np.ceil((i - k) / j)) + 1 for i, j, k in zip(image_size, t, tile_size)]
    out = []
    for d in range(len(tile_size)):
        m = image_size[d] - tile_size[d]
        a = m / (n[d] - 1) if n[d] > 1 else 99999999999
        out.append([int(np.round(a * i)) for i in range(n[d])])
    return out
print(steps((110, 64), (64, 64)), steps((109, 64), (64, 64)), steps((512, 512), (448, 448)), steps((56, 40), (56, 40)))
print('round(2.5)=', round(2.5), 'round(3.5)=', round(3.5), 'int(round(0.7/1.0*37))', int(round(0.7/1.0*37)))
