/** iq2_e8: kvsplit's own 2-bit codebook KV format with a one-byte scale (9-byte blocks of 32 values, 2.25 bits per value); see codebook.ts. */
import { IQ2_E8, codebookFormat } from "./codebook.js";

export const iq2_e8 = codebookFormat(IQ2_E8, 1012);
