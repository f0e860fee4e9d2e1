/**
 * AES-256-CFB128 on a Kernel, byte-identical to `openssl enc -aes-256-cfb -K <hex> -iv <hex>` and to
 * node:crypto's 'aes-256-cfb', streaming: the feedback register and the position inside it (OpenSSL's
 * ivec and num) carry over between update() calls, so any split of the stream gives the same bytes.
 *
 * NOT constant-time (T-tables, see wasm/assembly/aes.ts): prefer node:crypto where it is faster, which
 * `npm run bench:kernels` measures.
 *
 * Parallel decryption: CFB decryption of a segment that starts at ciphertext offset o (a multiple of 16)
 * needs only the 16 ciphertext bytes before o as its IV (the stream's IV for o = 0), so a worker can
 * decrypt each such segment independently with its own AesCfb.
 */
import { KernelError, KernelErrorCode } from './errors.js';
import { WINDOW, type KernelInstance } from './instance.js';

export type CfbDirection = 'encrypt' | 'decrypt';

/** Layout of the cipher's record in the kernel: round keys (240 bytes), then register and position. */
const RK_BYTES = 240;
const STATE_OFFSET = RK_BYTES;
const RECORD_BYTES = RK_BYTES + 32;

/** AesCfb is one AES-256-CFB128 stream. dispose() wipes the key schedule and frees its memory. */
export class AesCfb {
  readonly direction: CfbDirection;
  readonly #k: KernelInstance;
  #rec = 0;

  constructor(k: KernelInstance, key: Uint8Array, iv: Uint8Array, direction: CfbDirection) {
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw new KernelError(KernelErrorCode.INPUT, 'aes-256-cfb: the key must be 32 bytes');
    }
    if (!(iv instanceof Uint8Array) || iv.length !== 16) {
      throw new KernelError(KernelErrorCode.INPUT, 'aes-256-cfb: the IV must be 16 bytes');
    }
    if (direction !== 'encrypt' && direction !== 'decrypt') {
      throw new KernelError(KernelErrorCode.INPUT, "aes-256-cfb: direction must be 'encrypt' or 'decrypt'");
    }
    this.#k = k;
    this.direction = direction;
    this.#rec = k.alloc(RECORD_BYTES, this);
    const [kp] = k.scratch(32);
    const keyCopy = k.bytes(kp, 32);
    keyCopy.set(key);
    try {
      k.call('aesExpandKey256', (x) => x.aesExpandKey256(kp, this.#rec));
    } finally {
      keyCopy.fill(0);
    }
    const st = k.bytes(this.#rec + STATE_OFFSET, 32);
    st.fill(0);
    st.set(iv);
  }

  /** position is the offset inside the current 16-byte block (OpenSSL's num): 0 at block boundaries. */
  get position(): number {
    return this.#live().u32(this.#rec + STATE_OFFSET + 16, 1)[0];
  }

  /** register returns a copy of the 16-byte feedback register (OpenSSL's ivec). */
  register(): Uint8Array {
    return this.#live().bytes(this.#rec + STATE_OFFSET, 16).slice();
  }

  /**
   * update encrypts or decrypts input and returns the result in output (default: a new Buffer of the
   * same length). output may be input itself (in place) and must be at least input.length bytes.
   */
  update(input: Uint8Array, output?: Uint8Array): Uint8Array {
    const k = this.#live();
    const out = output ?? Buffer.allocUnsafe(input.length);
    if (out.length < input.length) {
      throw new KernelError(KernelErrorCode.INPUT, 'aes-256-cfb: output is shorter than input');
    }
    const rk = this.#rec;
    const st = this.#rec + STATE_OFFSET;
    const encrypt = this.direction === 'encrypt';
    for (let s = 0; s < input.length; s += WINDOW) {
      const len = Math.min(WINDOW, input.length - s);
      const [p] = k.scratch(len);
      k.bytes(p, len).set(input.subarray(s, s + len));
      k.call('cfb', (x) => (encrypt ? x.cfbEncrypt(rk, st, p, p, len) : x.cfbDecrypt(rk, st, p, p, len)));
      out.set(k.bytes(p, len), s);
    }
    return out;
  }

  /** dispose wipes the round keys and register (free() zero-fills) and frees them. Idempotent. */
  dispose(): void {
    if (!this.#rec) return;
    this.#k.release(this);
    this.#k.free(this.#rec);
    this.#rec = 0;
  }

  #live(): KernelInstance {
    if (!this.#rec) throw new KernelError(KernelErrorCode.DISPOSED, 'aes-256-cfb used after dispose()');
    return this.#k;
  }
}
