// Energy VAD: a frame is speech when it is louder than the noise floor by a margin. The floor follows the
// quietest recent frames, so steady line noise (phone hiss, fans) does not count as speech.
import { type AudioFrame, dbfs } from '../audio.js';
import { ThresholdVad, type VadOptions } from './vad.js';

export interface EnergyVadOptions extends VadOptions {
  /** dB above the noise floor that reads as certain speech. */
  marginDb: number;
  /** Never treat anything quieter than this as speech, whatever the floor. */
  minDbfs: number;
}

export const ENERGY_VAD_DEFAULTS: EnergyVadOptions = { threshold: 0.5, minSpeechMs: 60, minSilenceMs: 200, marginDb: 12, minDbfs: -50 };

export class EnergyVad extends ThresholdVad {
  /** Starts at the first frame's level: a line that starts noisy must not start as speech. */
  private floorDb: number | undefined;

  constructor(private readonly energy: EnergyVadOptions = ENERGY_VAD_DEFAULTS) {
    super(energy);
  }

  protected confidence(frame: AudioFrame): number {
    const level = Math.max(-100, dbfs(frame.pcm));
    // The floor drops at once to quieter frames and rises slowly (about 1 dB per second at 20 ms frames).
    this.floorDb = this.floorDb === undefined || level < this.floorDb ? level : this.floorDb + 0.02;
    if (level < this.energy.minDbfs) return 0;
    const above = level - Math.max(this.floorDb, -70);
    return Math.max(0, Math.min(1, above / this.energy.marginDb / 2));
  }
}
