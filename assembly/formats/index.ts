// One file per block format; each exports quantizeRow_<fmt>, dequantizeRow_<fmt>, dot_<fmt>, axpy_<fmt>, matvec_<fmt>.
export * from "./f32";
