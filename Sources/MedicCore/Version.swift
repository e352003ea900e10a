/// Medic's version, as `medic --version`, `medicd --version` and the `medic_build_info`
/// metric give it.
public enum MedicVersion {
    public static let string = "0.7.0"
}
