/** iq3_e8: kvsplit's own 3-bit codebook KV format with a one-byte scale (13-byte blocks of 32 values, 3.25 bits per value); see codebook.ts. */
import { IQ3_E8, codebookFormat } from "./codebook.js";

export const iq3_e8 = codebookFormat(IQ3_E8, 1013);
